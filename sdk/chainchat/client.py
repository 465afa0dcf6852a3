"""Async client for the ChainChat gateway API (SPEC §7), with transparent token refresh.

    async with Client("http://127.0.0.1:8000") as client:
        session = await client.login("ada@example.org", "correct horse battery")
        convs = await client.list_conversations()

Errors from the server raise :class:`ApiError` with the SPEC's stable ``code``; a server that cannot
be reached raises :class:`ApiError` with code ``unreachable``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from chainchat_protocol.chat import HISTORY_DEFAULT_LIMIT

JSON = dict[str, Any]


class ApiError(Exception):
    """An error answered by the gateway (``code`` from the SPEC error body) or a transport failure."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"{message} ({code})")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass
class Session:
    """Tokens of one logged-in account; ``expires_at`` is a UNIX time for the access token."""

    access_token: str
    refresh_token: str
    expires_at: float
    user: JSON = field(default_factory=dict)

    @classmethod
    def from_login(cls, body: JSON) -> Session:
        return cls(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            expires_at=time.time() + float(body.get("expires_in", 900)),
            user=body.get("user") or {},
        )

    def to_dict(self) -> JSON:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "user": self.user,
        }

    @classmethod
    def from_dict(cls, data: JSON) -> Session:
        return cls(
            data["access_token"], data["refresh_token"], float(data["expires_at"]), data.get("user", {})
        )


TokenListener = Callable[[Session | None], Awaitable[None] | None]


class Client:
    """One gateway, optionally one logged-in session (refreshed before it expires)."""

    def __init__(
        self,
        base_url: str,
        *,
        session: Session | None = None,
        on_session_change: TokenListener | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self._on_session_change = on_session_change
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing ---------------------------------------------------------------------------
    async def _set_session(self, session: Session | None) -> None:
        self.session = session
        if self._on_session_change is not None:
            result = self._on_session_change(session)
            if result is not None:
                await result

    async def _auth_headers(self) -> dict[str, str]:
        if self.session is None:
            raise ApiError(401, "not_logged_in", "log in first")
        if self.session.expires_at - time.time() < 30:
            await self.refresh()
        assert self.session is not None
        return {"Authorization": f"Bearer {self.session.access_token}"}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
        content: bytes | AsyncIterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Send one API request (``path`` below ``/api/v1``) and return the decoded JSON body."""
        all_headers = dict(headers or {})
        if auth:
            all_headers.update(await self._auth_headers())
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = await self._http.request(
                method, f"/api/v1{path}", json=json_body, params=clean, content=content, headers=all_headers
            )
        except httpx.TransportError as exc:
            raise ApiError(
                0, "unreachable", f"cannot reach {self.base_url}: {exc or type(exc).__name__}"
            ) from None
        return _decode(resp)

    # -- accounts ---------------------------------------------------------------------------
    async def register(self, email: str, password: str, display_name: str) -> JSON:
        body = {"email": email, "password": password, "display_name": display_name}
        result: JSON = await self.request("POST", "/auth/register", json_body=body, auth=False)
        return result

    async def verify_email(self, token: str) -> JSON:
        result: JSON = await self.request("POST", "/auth/verify", json_body={"token": token}, auth=False)
        return result

    async def login(self, email: str, password: str, totp_code: str | None = None) -> Session:
        body: JSON = {"email": email, "password": password}
        if totp_code:
            body["totp_code"] = totp_code
        session = Session.from_login(await self.request("POST", "/auth/login", json_body=body, auth=False))
        await self._set_session(session)
        return session

    async def login_with_wallet(self, message: str, signature: str) -> Session:
        body = {"message": message, "signature": signature}
        session = Session.from_login(await self.request("POST", "/auth/siwe", json_body=body, auth=False))
        await self._set_session(session)
        return session

    async def refresh(self) -> Session:
        if self.session is None:
            raise ApiError(401, "not_logged_in", "log in first")
        body = {"refresh_token": self.session.refresh_token}
        try:
            reply = await self.request("POST", "/auth/refresh", json_body=body, auth=False)
        except ApiError as exc:
            if exc.status == 401:
                await self._set_session(None)
            raise
        session = Session.from_login({**reply, "user": reply.get("user") or self.session.user})
        await self._set_session(session)
        return session

    async def logout(self) -> None:
        if self.session is None:
            return
        try:
            await self.request(
                "POST", "/auth/logout", json_body={"refresh_token": self.session.refresh_token}
            )
        finally:
            await self._set_session(None)

    async def me(self) -> JSON:
        result: JSON = await self.request("GET", "/auth/me")
        return result

    # -- directory and keys -----------------------------------------------------------------
    async def search_users(self, query: str) -> list[JSON]:
        result = await self.request("GET", "/users", params={"q": query})
        users: list[JSON] = result["users"] if isinstance(result, dict) else result
        return users

    async def publish_keys(self, x25519_public: str, ed25519_public: str, suites: list[str]) -> JSON:
        body = {"x25519_public": x25519_public, "ed25519_public": ed25519_public, "suite_support": suites}
        result: JSON = await self.request("PUT", "/keys/me", json_body=body)
        return result

    async def get_keys(self, user_id: str) -> JSON:
        result: JSON = await self.request("GET", f"/keys/{user_id}")
        return result

    # -- conversations and messages ---------------------------------------------------------
    async def create_conversation(self, member_ids: list[str], title: str | None = None) -> JSON:
        body: JSON = {"member_ids": member_ids}
        if title:
            body["title"] = title
        result: JSON = await self.request("POST", "/conversations", json_body=body)
        return result

    async def list_conversations(self, *, max_pages: int = 1000) -> list[JSON]:
        """Every conversation of the caller, most recently active first (follows ``has_more``)."""
        convs: list[JSON] = []
        params: dict[str, Any] = {}
        for _ in range(max_pages):
            result = await self.request("GET", "/conversations", params=params)
            convs += result["conversations"]
            if not result.get("has_more") or not result.get("next_cursor"):
                break
            params = {"cursor": result["next_cursor"]}
        return convs

    async def send_envelope(
        self,
        conversation_id: str,
        envelope: JSON,
        client_id: str | None = None,
        file_ids: list[str] | None = None,
    ) -> JSON:
        body: JSON = {"envelope": envelope}
        if client_id:
            body["client_id"] = client_id
        if file_ids:
            body["file_ids"] = file_ids
        result: JSON = await self.request(
            "POST", f"/conversations/{conversation_id}/messages", json_body=body
        )
        return result

    async def history_page(
        self,
        conversation_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> JSON:
        """One page as the server sends it: ``{"messages": [...], "has_more": bool}``."""
        params = {"after_seq": after_seq, "before_seq": before_seq, "limit": limit}
        page: JSON = await self.request("GET", f"/conversations/{conversation_id}/messages", params=params)
        return page

    async def history(
        self,
        conversation_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[JSON]:
        """Up to ``limit`` messages (default 50), ascending by seq: the first after ``after_seq``,
        else the last before ``before_seq`` (or the latest). The server may send fewer per page
        than asked (a page fits one bus reply); this follows ``has_more`` until ``limit``."""
        want = limit or HISTORY_DEFAULT_LIMIT
        messages: list[JSON] = []
        while len(messages) < want:
            page = await self.history_page(
                conversation_id, after_seq=after_seq, before_seq=before_seq, limit=want - len(messages)
            )
            got: list[JSON] = page["messages"]
            if after_seq is not None:
                messages += got
                after_seq = got[-1]["seq"] if got else after_seq
            else:
                messages = got + messages
                before_seq = got[0]["seq"] if got else before_seq
            if not got or not page.get("has_more"):
                break
        return messages

    async def delete_message(self, message_id: str) -> JSON:
        result: JSON = await self.request("DELETE", f"/messages/{message_id}")
        return result

    async def mark_read(self, conversation_id: str, seq: int) -> JSON:
        result: JSON = await self.request(
            "POST", f"/conversations/{conversation_id}/read", json_body={"seq": seq}
        )
        return result

    async def message_proof(self, message_id: str) -> JSON:
        result: JSON = await self.request("GET", f"/messages/{message_id}/proof")
        return result

    # -- files ------------------------------------------------------------------------------
    async def upload_file(
        self, conversation_id: str, chunks: AsyncIterable[bytes], size: int | None = None
    ) -> JSON:
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        result: JSON = await self.request(
            "POST", "/files", params={"conversation_id": conversation_id}, content=chunks, headers=headers
        )
        return result

    @asynccontextmanager
    async def download_file(
        self, file_id: str, *, start: int = 0, end: int | None = None
    ) -> AsyncIterator[httpx.Response]:
        """Stream a file's (encrypted) bytes; ``start``/``end`` (inclusive) ask for a Range."""
        headers = await self._auth_headers()
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            async with self._http.stream("GET", f"/api/v1/files/{file_id}", headers=headers) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    _decode(resp)
                yield resp
        except httpx.TransportError as exc:
            raise ApiError(
                0, "unreachable", f"cannot reach {self.base_url}: {exc or type(exc).__name__}"
            ) from None

    async def file_proof(self, file_id: str) -> JSON:
        result: JSON = await self.request("GET", f"/files/{file_id}/proof")
        return result

    # -- ledger and admin -------------------------------------------------------------------
    async def ledger_info(self) -> JSON:
        result: JSON = await self.request("GET", "/ledger/info", auth=False)
        return result

    async def consistency(self, from_size: int, to_size: int) -> JSON:
        params = {"from_size": from_size, "to_size": to_size}
        result: JSON = await self.request("GET", "/ledger/consistency", params=params, auth=False)
        return result

    async def admin_users(self, status: str | None = None) -> list[JSON]:
        result = await self.request("GET", "/admin/users", params={"status": status})
        users: list[JSON] = result["users"] if isinstance(result, dict) else result
        return users

    async def admin_action(self, user_id: str, action: str) -> JSON:
        """``action`` is approve, reject, disable or enable."""
        result: JSON = await self.request("POST", f"/admin/users/{user_id}/{action}")
        return result

    async def audit(self, **filters: Any) -> list[JSON]:
        result = await self.request("GET", "/admin/audit", params=filters)
        events: list[JSON] = result["events"] if isinstance(result, dict) else result
        return events


def _decode(resp: httpx.Response) -> Any:
    if resp.status_code == 204 or not resp.content:
        if resp.status_code >= 400:
            raise ApiError(resp.status_code, "http_error", f"HTTP {resp.status_code}")
        return None
    try:
        body = resp.json()
    except json.JSONDecodeError:
        raise ApiError(
            resp.status_code, "bad_response", f"unexpected non-JSON answer (HTTP {resp.status_code})"
        ) from None
    if resp.status_code >= 400:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        retry = resp.headers.get("Retry-After")
        raise ApiError(
            resp.status_code,
            str(error.get("code", "http_error")),
            str(error.get("message", f"HTTP {resp.status_code}")),
            float(retry) if retry and retry.isdigit() else None,
        )
    return body
