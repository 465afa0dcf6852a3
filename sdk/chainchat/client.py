"""Async client for the ChainChat gateway API (SPEC §7), with transparent token refresh.

    async with Client("http://127.0.0.1:8000") as client:
        session = await client.login("ada@example.org", "correct horse battery")
        convs = await client.list_conversations()      # list[ConversationSummary]

Every method returns the protocol's model of the route's body (the same pydantic model the gateway
answers with), so a caller reads ``conv.conversation_id``, never a guessed dict key; ``request()``
stays for raw calls.

Errors from the server raise :class:`ApiError` with the SPEC's stable ``code``; a server that cannot
be reached raises :class:`ApiError` with code ``unreachable``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from chainchat_protocol.auth import (
    AdminUsersReply,
    AuditEventWithProof,
    AuditReply,
    MfaEnableReply,
    MfaSetupReply,
    MfaStatusReply,
    ReauthReply,
    RegisterReply,
    TokenReply,
    UserPublic,
    VerifyReply,
)
from chainchat_protocol.chat import (
    HISTORY_DEFAULT_LIMIT,
    ConversationList,
    ConversationPublic,
    ConversationSummary,
    History,
    MessageRemoved,
    MessageView,
    ReadPosition,
    SendResult,
)
from chainchat_protocol.files import FileUploaded
from chainchat_protocol.keys_directory import (
    OwnDevice,
    OwnDevicesReply,
    PublicKeysReply,
    PublishKeyReply,
    UserHit,
)
from chainchat_protocol.ledger import LedgerInfo
from chainchat_protocol.proof import ConsistencyProof, ProofObject

JSON = dict[str, Any]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
_USER_HITS = TypeAdapter(list[UserHit])


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
    def from_login(cls, reply: TokenReply, refresh_token: str | None = None) -> Session:
        token = reply.refresh_token or refresh_token
        if token is None:
            raise ApiError(502, "bad_response", "the server sent no refresh token")
        return cls(
            access_token=reply.access_token,
            refresh_token=token,
            expires_at=time.time() + float(reply.expires_in),
            user=reply.user.model_dump(mode="json"),
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

REAUTH_HEADER = "X-Reauth-Token"
# a reauth token this close to its expiry is not sent: get a new one instead
_REAUTH_MARGIN_S = 10.0


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
        # (token, expires_at): recent authentication of this session, see :meth:`reauth`
        self._reauth: tuple[str, float] | None = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing ---------------------------------------------------------------------------
    async def _set_session(self, session: Session | None) -> None:
        if session is None:
            self._reauth = None  # it was bound to the session that ended
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
        reauth: bool = False,
    ) -> Any:
        """Send one API request (``path`` below ``/api/v1``) and return the decoded JSON body.

        ``reauth``: the route changes the account (SPEC §11); the reauth token from :meth:`reauth`
        or the login is sent with it while it is valid (else the server answers 403
        ``reauth_required``: call :meth:`reauth` and try again)."""
        all_headers = dict(headers or {})
        if auth:
            all_headers.update(await self._auth_headers())
        if reauth and self.reauth_token is not None:
            all_headers[REAUTH_HEADER] = self.reauth_token
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

    async def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        """:meth:`request`, the body read as the route's protocol model."""
        return _parse(model.model_validate, await self.request(method, path, **kwargs))

    # -- accounts ---------------------------------------------------------------------------
    async def register(self, email: str, password: str, display_name: str) -> RegisterReply:
        body = {"email": email, "password": password, "display_name": display_name}
        return await self._call(RegisterReply, "POST", "/auth/register", json_body=body, auth=False)

    async def verify_email(self, token: str) -> VerifyReply:
        return await self._call(VerifyReply, "POST", "/auth/verify", json_body={"token": token}, auth=False)

    async def login(self, email: str, password: str, totp_code: str | None = None) -> Session:
        body: JSON = {"email": email, "password": password}
        if totp_code:
            body["totp_code"] = totp_code
        return await self._adopt_login(
            await self._call(TokenReply, "POST", "/auth/login", json_body=body, auth=False)
        )

    async def login_with_wallet(self, message: str, signature: str, totp_code: str | None = None) -> Session:
        """Sign-In with Ethereum; ``totp_code`` when the account has MFA on (``mfa_required``)."""
        body: JSON = {"message": message, "signature": signature}
        if totp_code:
            body["totp_code"] = totp_code
        return await self._adopt_login(
            await self._call(TokenReply, "POST", "/auth/siwe", json_body=body, auth=False)
        )

    async def _adopt_login(self, reply: TokenReply) -> Session:
        session = Session.from_login(reply)
        await self._set_session(session)
        # a login is a recent authentication: its reauth token lets this device publish its key
        self._keep_reauth(reply.reauth_token, 300.0)
        return session

    # -- recent authentication (SPEC §11) -----------------------------------------------------
    @property
    def reauth_token(self) -> str | None:
        """The session's reauth token while it is valid, else None."""
        if self._reauth is None or self._reauth[1] - time.time() < _REAUTH_MARGIN_S:
            return None
        return self._reauth[0]

    def _keep_reauth(self, token: str | None, expires_in: float) -> None:
        self._reauth = (token, time.time() + expires_in) if token else None

    async def reauth(
        self,
        password: str | None = None,
        totp_code: str | None = None,
        *,
        siwe_message: str | None = None,
        signature: str | None = None,
    ) -> str:
        """Prove again that this session holds the account's credentials (the password, or the
        linked wallet's signature; TOTP when MFA is on). The token is kept and sent with the
        routes that need it for up to five minutes; returned too."""
        body: JSON = {"password": password} if password is not None else {}
        if siwe_message is not None or signature is not None:
            body.update({"siwe_message": siwe_message, "signature": signature})
        if totp_code:
            body["totp_code"] = totp_code
        reply = await self._call(ReauthReply, "POST", "/auth/reauth", json_body=body)
        self._keep_reauth(reply.reauth_token, float(reply.expires_in))
        return reply.reauth_token

    async def change_password(self, new_password: str) -> None:
        """Set a new password (needs :meth:`reauth`); the account's other sessions end."""
        await self.request("POST", "/auth/password/change", json_body={"password": new_password}, reauth=True)

    async def mfa_setup(self) -> MfaSetupReply:
        """Start TOTP enrolment (needs :meth:`reauth`): the secret and its ``otpauth://`` URI."""
        return await self._call(MfaSetupReply, "POST", "/auth/mfa/setup", json_body={}, reauth=True)

    async def mfa_enable(self, code: str) -> MfaEnableReply:
        """Confirm TOTP with a code (needs :meth:`reauth`); the reply holds the recovery codes."""
        return await self._call(
            MfaEnableReply, "POST", "/auth/mfa/enable", json_body={"code": code}, reauth=True
        )

    async def mfa_disable(self, code: str) -> MfaStatusReply:
        """Turn TOTP off with a code or a recovery code (needs :meth:`reauth`)."""
        return await self._call(
            MfaStatusReply, "POST", "/auth/mfa/disable", json_body={"code": code}, reauth=True
        )

    async def link_wallet(self, message: str, signature: str) -> TokenReply:
        """Link a wallet to the logged-in account (needs :meth:`reauth`)."""
        body = {"message": message, "signature": signature}
        return await self._call(TokenReply, "POST", "/auth/siwe", json_body=body, reauth=True)

    async def unlink_wallet(self) -> UserPublic:
        """Unlink the account's wallet (needs :meth:`reauth`); returns the account."""
        return await self._call(UserPublic, "DELETE", "/auth/siwe", reauth=True)

    async def refresh(self) -> Session:
        if self.session is None:
            raise ApiError(401, "not_logged_in", "log in first")
        body = {"refresh_token": self.session.refresh_token}
        try:
            reply = await self._call(TokenReply, "POST", "/auth/refresh", json_body=body, auth=False)
        except ApiError as exc:
            if exc.status == 401:
                await self._set_session(None)
            raise
        session = Session.from_login(reply, refresh_token=self.session.refresh_token)
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

    async def me(self) -> UserPublic:
        return await self._call(UserPublic, "GET", "/auth/me")

    # -- directory and keys -----------------------------------------------------------------
    async def search_users(self, query: str) -> list[UserHit]:
        return _parse(_USER_HITS.validate_python, await self.request("GET", "/users", params={"q": query}))

    async def publish_keys(
        self, x25519_public: str, ed25519_public: str, suites: list[str], label: str | None = None
    ) -> PublishKeyReply:
        """Publish this device's keys; a new device on an account that has one needs :meth:`reauth`."""
        body: JSON = {
            "x25519_public": x25519_public,
            "ed25519_public": ed25519_public,
            "suite_support": suites,
        }
        if label:
            body["label"] = label
        return await self._call(PublishKeyReply, "PUT", "/keys/me", json_body=body, reauth=True)

    async def my_devices(self) -> list[OwnDevice]:
        """The account's devices (key id, label, when added and revoked), revoked ones too."""
        return (await self._call(OwnDevicesReply, "GET", "/keys/me")).devices

    async def revoke_device(self, key_id: str) -> None:
        """Revoke one of the account's device keys (needs :meth:`reauth`)."""
        await self.request("DELETE", f"/keys/me/{key_id}", reauth=True)

    async def get_keys(self, user_id: str) -> PublicKeysReply:
        return await self._call(PublicKeysReply, "GET", f"/keys/{user_id}")

    # -- conversations and messages ---------------------------------------------------------
    async def create_conversation(
        self, member_ids: list[str], title: str | None = None
    ) -> ConversationPublic:
        body: JSON = {"member_ids": member_ids}
        if title:
            body["title"] = title
        return await self._call(ConversationPublic, "POST", "/conversations", json_body=body)

    async def list_conversations(self, *, max_pages: int = 1000) -> list[ConversationSummary]:
        """Every conversation of the caller, most recently active first (follows ``has_more``)."""
        convs: list[ConversationSummary] = []
        params: dict[str, Any] = {}
        for _ in range(max_pages):
            page = await self._call(ConversationList, "GET", "/conversations", params=params)
            convs += page.conversations
            if not page.has_more or not page.next_cursor:
                break
            params = {"cursor": page.next_cursor}
        return convs

    async def send_envelope(
        self,
        conversation_id: str,
        envelope: JSON,
        client_id: str | None = None,
        file_ids: list[str] | None = None,
    ) -> SendResult:
        body: JSON = {"envelope": envelope}
        if client_id:
            body["client_id"] = client_id
        if file_ids:
            body["file_ids"] = file_ids
        return await self._call(
            SendResult, "POST", f"/conversations/{conversation_id}/messages", json_body=body
        )

    async def history_page(
        self,
        conversation_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> History:
        """One page as the server sends it (``has_more``: more lie beyond it in the direction read)."""
        params = {"after_seq": after_seq, "before_seq": before_seq, "limit": limit}
        return await self._call(History, "GET", f"/conversations/{conversation_id}/messages", params=params)

    async def history(
        self,
        conversation_id: str,
        *,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int | None = None,
    ) -> list[MessageView]:
        """Up to ``limit`` messages (default 50), ascending by seq: the first after ``after_seq``,
        else the last before ``before_seq`` (or the latest). The server may send fewer per page
        than asked (a page fits one bus reply); this follows ``has_more`` until ``limit``."""
        want = limit or HISTORY_DEFAULT_LIMIT
        messages: list[MessageView] = []
        while len(messages) < want:
            page = await self.history_page(
                conversation_id, after_seq=after_seq, before_seq=before_seq, limit=want - len(messages)
            )
            got = page.messages
            if after_seq is not None:
                messages += got
                after_seq = got[-1].seq if got else after_seq
            else:
                messages = got + messages
                before_seq = got[0].seq if got else before_seq
            if not got or not page.has_more:
                break
        return messages

    async def delete_message(self, message_id: str) -> MessageRemoved:
        return await self._call(MessageRemoved, "DELETE", f"/messages/{message_id}")

    async def mark_read(self, conversation_id: str, seq: int) -> ReadPosition:
        return await self._call(
            ReadPosition, "POST", f"/conversations/{conversation_id}/read", json_body={"seq": seq}
        )

    async def message_proof(self, message_id: str) -> ProofObject:
        return await self._call(ProofObject, "GET", f"/messages/{message_id}/proof")

    # -- files ------------------------------------------------------------------------------
    async def upload_file(
        self, conversation_id: str, chunks: AsyncIterable[bytes], size: int | None = None
    ) -> FileUploaded:
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        params = {"conversation_id": conversation_id}
        return await self._call(
            FileUploaded, "POST", "/files", params=params, content=chunks, headers=headers
        )

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

    async def file_proof(self, file_id: str) -> ProofObject:
        return await self._call(ProofObject, "GET", f"/files/{file_id}/proof")

    # -- ledger and admin -------------------------------------------------------------------
    async def ledger_info(self) -> LedgerInfo:
        return await self._call(LedgerInfo, "GET", "/ledger/info", auth=False)

    async def consistency(self, from_size: int, to_size: int) -> ConsistencyProof:
        params = {"from_size": from_size, "to_size": to_size}
        return await self._call(ConsistencyProof, "GET", "/ledger/consistency", params=params, auth=False)

    async def admin_users(self, status: str | None = None) -> list[UserPublic]:
        return (await self._call(AdminUsersReply, "GET", "/admin/users", params={"status": status})).users

    async def admin_action(self, user_id: str, action: str) -> UserPublic:
        """``action`` is approve, reject, disable or enable."""
        return await self._call(UserPublic, "POST", f"/admin/users/{user_id}/{action}")

    async def audit(self, **filters: Any) -> list[AuditEventWithProof]:
        return (await self._call(AuditReply, "GET", "/admin/audit", params=filters)).events


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


def _parse(validate: Callable[[Any], T], body: Any) -> T:
    """``body`` read by ``validate`` (a model's); a body that is not one is the server's fault,
    said as an ApiError, never a pydantic traceback."""
    try:
        return validate(body)
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"]) or "body"
        raise ApiError(
            502, "bad_response", f"the server's answer is not the expected shape (at {where})"
        ) from None
