"""A small client for the Kubo RPC API (``/api/v0``): the only way the files service talks to IPFS.

Only what any Kubo node (or compatible pinning service) offers is used: ``add`` (multipart body,
generated on the fly so an upload is never held in memory), ``cat`` with ``offset``/``length``,
``pin/rm``, ``pin/ls``, ``repo/gc``, ``id`` and ``version``. Every RPC is a POST, as Kubo requires.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from chainchat_protocol.errors import Unavailable
from chainchat_protocol.files import FilesErrorCode

# CIDv1 with raw leaves: the CID of a small file is the sha2-256 of its bytes, and the same bytes
# give the same CID on any Kubo node.
ADD_PARAMS = {"cid-version": "1", "raw-leaves": "true", "pin": "true", "quieter": "true"}


class IpfsUnavailable(Unavailable):
    """The IPFS node does not answer (down, restarting, unreachable)."""

    default_code = FilesErrorCode.IPFS_UNAVAILABLE


class IpfsError(Exception):
    """The node answered, with an error (unknown CID, not pinned, bad argument...)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class NodeInfo:
    peer_id: str
    version: str
    agent: str


_TRANSPORT_ERRORS = (httpx.TransportError,)


def _unavailable(exc: Exception) -> IpfsUnavailable:
    detail = type(exc).__name__
    return IpfsUnavailable(f"the IPFS node is unavailable ({detail})", code=FilesErrorCode.IPFS_UNAVAILABLE)


async def _multipart(chunks: AsyncIterable[bytes], boundary: str, filename: str) -> AsyncIterator[bytes]:
    """One ``file`` part around the streamed bytes: Kubo's add reads exactly this shape."""
    yield (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    async for chunk in chunks:
        yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def _error_message(resp: httpx.Response) -> str:
    try:
        body: Any = resp.json()
        return str(body.get("Message") or body)
    except (ValueError, AttributeError):
        return resp.text[:200] or f"HTTP {resp.status_code}"


class KuboClient:
    """Kubo RPC over one pooled HTTP client; connection errors become :class:`IpfsUnavailable`."""

    def __init__(
        self,
        api_url: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        timeout = httpx.Timeout(connect=connect_timeout, read=read_timeout, write=60.0, pool=10.0)
        # retries=1 re-dials once on a refused connection (a node that just restarted)
        self._http = httpx.AsyncClient(
            timeout=timeout,
            transport=transport or httpx.AsyncHTTPTransport(retries=1),
            headers={"Accept-Encoding": "identity"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(
        self, command: str, params: dict[str, str] | None = None, timeout: float | None = None
    ) -> Any:
        try:
            resp = await self._http.post(
                f"{self.api_url}/{command}", params=params, timeout=timeout or httpx.USE_CLIENT_DEFAULT
            )
        except _TRANSPORT_ERRORS as exc:
            raise _unavailable(exc) from exc
        if resp.status_code != 200:
            raise IpfsError(_error_message(resp), resp.status_code)
        return resp.json()

    async def node_info(self) -> NodeInfo:
        """``id`` and ``version``: the node answers and speaks the RPC API."""
        ident = await self._post("id", timeout=3.0)
        version = await self._post("version", timeout=3.0)
        return NodeInfo(
            peer_id=str(ident.get("ID", "")),
            version=str(version.get("Version", "")),
            agent=str(ident.get("AgentVersion", "")),
        )

    async def add(self, chunks: AsyncIterable[bytes], filename: str = "blob") -> str:
        """Stream ``chunks`` into ``add`` (pinned, CIDv1, raw leaves) and return the root CID.

        An exception raised by ``chunks`` (too large, client gone) aborts the HTTP request half
        way, so the node never completes the import and never pins it; it propagates unchanged.
        """
        boundary = secrets.token_hex(16)
        try:
            resp = await self._http.post(
                f"{self.api_url}/add",
                params=ADD_PARAMS,
                content=_multipart(chunks, boundary, filename),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
        except _TRANSPORT_ERRORS as exc:
            raise _unavailable(exc) from exc
        if resp.status_code != 200:
            raise IpfsError(_error_message(resp), resp.status_code)
        cid = ""
        for line in resp.text.splitlines():
            if line.strip():
                cid = str(json.loads(line).get("Hash") or cid)
        if not cid:
            # Kubo reports a failure after the 200 header in a trailer httpx does not expose
            raise IpfsError("the node did not return a CID for the upload", 502)
        return cid

    async def open_cat(self, cid: str, offset: int = 0, length: int | None = None) -> httpx.Response:
        """Start ``cat`` and return the streaming response (status 200); the caller closes it."""
        params = {"arg": cid, "offset": str(offset)}
        if length is not None:
            params["length"] = str(length)
        request = self._http.build_request("POST", f"{self.api_url}/cat", params=params)
        try:
            resp = await self._http.send(request, stream=True)
        except _TRANSPORT_ERRORS as exc:
            raise _unavailable(exc) from exc
        if resp.status_code != 200:
            try:
                await resp.aread()
            except _TRANSPORT_ERRORS as exc:
                raise _unavailable(exc) from exc
            finally:
                await resp.aclose()
            raise IpfsError(_error_message(resp), resp.status_code)
        return resp

    async def pin_rm(self, cid: str) -> bool:
        """Unpin ``cid``; False when it was not pinned (already removed: nothing to do)."""
        try:
            await self._post("pin/rm", {"arg": cid})
        except IpfsError as exc:
            if "not pinned" in str(exc):
                return False
            raise
        return True

    async def pin_add(self, cid: str) -> None:
        """Pin ``cid`` recursively (idempotent)."""
        await self._post("pin/add", {"arg": cid})

    async def is_pinned(self, cid: str) -> bool:
        """True when ``cid`` is pinned recursively (directly or as a root)."""
        try:
            body = await self._post("pin/ls", {"arg": cid, "type": "recursive"})
        except IpfsError as exc:
            if "not pinned" in str(exc):
                return False
            raise
        return cid in (body.get("Keys") or {})

    async def pinned_roots(self) -> set[str]:
        """Every CID pinned recursively on the node."""
        body = await self._post("pin/ls", {"type": "recursive"})
        return set(body.get("Keys") or {})

    async def gc(self) -> None:
        """Ask the node to delete unpinned blocks (what an aborted upload left behind)."""
        try:
            resp = await self._http.post(f"{self.api_url}/repo/gc", params={"quiet": "true"})
        except _TRANSPORT_ERRORS as exc:
            raise _unavailable(exc) from exc
        if resp.status_code != 200:
            raise IpfsError(_error_message(resp), resp.status_code)
