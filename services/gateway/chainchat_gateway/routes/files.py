"""Public API routes for the files domain (SPEC §7).

Bulk bytes never go through NATS: the gateway checks the caller (token, membership over NATS) and
then streams the body to the files service over HTTP (``FILES_HTTP_URL``) and the download back,
chunk by chunk, so memory stays flat whatever the size. The caller's identity travels in headers,
signed with ``FILES_INTERNAL_SECRET`` when set (services/files/README.md, "Trust model").
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from chainchat_gateway.deps import BusDep
from chainchat_gateway.security import CurrentUser
from chainchat_protocol.chat import CHAT_CONVERSATION_MEMBER, ChatErrorCode, ConversationRequest
from chainchat_protocol.errors import (
    NotFound,
    PayloadTooLarge,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from chainchat_protocol.files import (
    ASSERTION_HEADER,
    CONVERSATION_HEADER,
    USER_HEADER,
    FilesErrorCode,
    FileUploaded,
    sign_internal_assertion,
)
from chainchat_service.logging import get_logger
from chainchat_service.runtime import ServiceRuntime
from chainchat_service.settings import PLACEHOLDER_SECRETS

log = get_logger(__name__)

router = APIRouter(tags=["files"])

MIB = 1024 * 1024
# after an early answer, read at most this much more of a body nobody wants, so the client sees it
DRAIN_AFTER_REFUSAL = 256 * 1024
# regroup the files service's pieces: fewer, larger writes cost less per byte in both processes
RELAY_CHUNK = 256 * 1024
# headers of a file response that the client gets as the files service set them
_RELAYED_HEADERS = (
    "content-length", "content-range", "etag", "accept-ranges", "cache-control", "x-content-type-options",
)  # fmt: skip
_FORWARDED_REQUEST_HEADERS = ("range", "if-range", "if-none-match")


class FilesRouteSettings(BaseSettings):
    """What the gateway needs to know about files (same variables as the files service)."""

    model_config = SettingsConfigDict(
        env_file=os.environ.get("CHAINCHAT_ENV_FILE", ".env"), extra="ignore", env_file_encoding="utf-8"
    )

    max_file_bytes: int = Field(default=100 * MIB, ge=0)
    files_internal_secret: str = ""


class FailoverTransport(httpx.AsyncBaseTransport):
    """Spreads requests over the files instances of ``FILES_HTTP_URL`` (comma-separated), in turn.

    A connection that cannot be opened moves the request on to the next instance: nothing of the
    request (nor of an upload's body) has been sent then, so the retry is safe. Any later failure
    is the caller's to report — a transfer that started is never silently replayed elsewhere.
    """

    def __init__(self, upstreams: list[str], inner: httpx.AsyncBaseTransport | None = None) -> None:
        if not upstreams:
            raise ValueError("FILES_HTTP_URL names no files instance")
        self.upstreams = [httpx.URL(u.rstrip("/")) for u in upstreams]
        self.inner = inner or httpx.AsyncHTTPTransport(retries=1)
        self._turn = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        start, self._turn = self._turn, (self._turn + 1) % len(self.upstreams)
        failure: httpx.ConnectError | None = None
        for step in range(len(self.upstreams)):
            upstream = self.upstreams[(start + step) % len(self.upstreams)]
            request.url = request.url.copy_with(
                scheme=upstream.scheme, host=upstream.host, port=upstream.port
            )
            request.headers["Host"] = upstream.netloc.decode()
            try:
                return await self.inner.handle_async_request(request)
            except httpx.ConnectError as exc:
                log.warning("files_instance_unreachable", upstream=str(upstream), error=str(exc))
                failure = exc
        assert failure is not None
        raise failure

    async def aclose(self) -> None:
        await self.inner.aclose()


class FilesProxy:
    """The HTTP client to the files service, and how a user's identity is presented to it."""

    def __init__(
        self, base_url: str, settings: FilesRouteSettings, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.settings = settings
        upstreams = [part.strip() for part in base_url.split(",") if part.strip()]
        self.http = httpx.AsyncClient(
            base_url=upstreams[0].rstrip("/") if upstreams else "",
            # no read timeout on bodies: a 100 MiB transfer may be slow; connect fails fast
            timeout=httpx.Timeout(connect=3.0, read=300.0, write=300.0, pool=10.0),
            transport=FailoverTransport(upstreams, transport),
            headers={"Accept-Encoding": "identity"},
        )

    def identity_headers(
        self, method: str, path: str, user_id: str, conversation_id: str = ""
    ) -> dict[str, str]:
        headers = {USER_HEADER: user_id}
        if conversation_id:
            headers[CONVERSATION_HEADER] = conversation_id
        if self.settings.files_internal_secret:
            headers[ASSERTION_HEADER] = sign_internal_assertion(
                self.settings.files_internal_secret, method, path, user_id, conversation_id
            )
        return headers


def _proxy(request: Request) -> FilesProxy:
    proxy: FilesProxy | None = getattr(request.app.state, "files_proxy", None)
    if proxy is None:
        raise Unavailable("file transfers are not available yet", code=FilesErrorCode.FILES_UNAVAILABLE)
    return proxy


async def setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    # tests may set their own (a small MAX_FILE_BYTES, a secret) before start-up
    settings = getattr(app.state, "files_route_settings", None) or FilesRouteSettings()
    secret = settings.files_internal_secret.strip().lower()
    if runtime.settings.environment == "production" and secret in PLACEHOLDER_SECRETS:
        raise RuntimeError(
            "FILES_INTERNAL_SECRET must be set to a real secret in production (ENVIRONMENT=production); "
            "refusing to start"
        )
    app.state.files_proxy = FilesProxy(app.state.settings.files_http_url, settings)


async def teardown(app: FastAPI, runtime: ServiceRuntime) -> None:
    proxy: FilesProxy | None = getattr(app.state, "files_proxy", None)
    if proxy is not None:
        await proxy.http.aclose()


# ---------------------------------------------------------------- upload


def _require_octet_stream(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/octet-stream":
        raise UnsupportedMediaType("the body must be the encrypted bytes, sent as application/octet-stream")


def _declared_length(request: Request, limit: int) -> str | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise ValidationFailed(
            "Content-Length must be a number of bytes", code=FilesErrorCode.INVALID_CONTENT_LENGTH
        )
    if int(value) > limit:
        raise PayloadTooLarge(
            f"the file is larger than the limit of {limit} bytes", code=FilesErrorCode.FILE_TOO_LARGE
        )
    return value.strip()


async def _require_member(bus: BusDep, user_id: str, conversation_id: str) -> None:
    try:
        await bus.request(
            CHAT_CONVERSATION_MEMBER, ConversationRequest(user_id=user_id, conversation_id=conversation_id)
        )
    except NotFound:
        raise NotFound("no such conversation", code=ChatErrorCode.CONVERSATION_NOT_FOUND) from None


class _Forwarded:
    """The client's body as it goes to the files service: counted, and drainable afterwards."""

    def __init__(self, request: Request) -> None:
        self._source = request.stream()
        self.sent = 0
        self.finished = False

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._source:
            self.sent += len(chunk)
            yield chunk
        self.finished = True

    async def drain(self, budget: int) -> None:
        if self.finished:
            return
        read = 0
        try:
            async for chunk in self._source:
                read += len(chunk)
                if read > budget:
                    return
        except ClientDisconnect:
            return
        self.finished = True


def _relay_error(resp: httpx.Response) -> Response:
    """An answer of the files service for the client: its SPEC error body, except trust failures."""
    if resp.status_code in (401, 403):
        # the files service did not believe the gateway: a deployment error, not the user's
        log.error("files_rejected_gateway", status=resp.status_code, body=resp.text[:200])
        raise Unavailable("file transfers are misconfigured", code=FilesErrorCode.FILES_UNAVAILABLE)
    headers = {
        k: v
        for k, v in resp.headers.items()
        if k.lower() in _RELAYED_HEADERS and k.lower() != "content-length"
    }
    media_type = resp.headers.get("content-type", "application/json")
    return Response(
        content=resp.content, status_code=resp.status_code, headers=headers, media_type=media_type
    )


_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post(
    "/files",
    status_code=201,
    response_model=FileUploaded,
    summary="Upload an encrypted file (streamed)",
    openapi_extra=_UPLOAD_DOC,
    responses={404: {"description": "not a member"}, 413: {"description": "too large"}, 415: {}, 503: {}},
)
async def upload_file(
    request: Request,
    user: CurrentUser,
    bus: BusDep,
    conversation_id: Annotated[str, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")],
) -> Response:
    proxy = _proxy(request)
    _require_octet_stream(request)
    declared = _declared_length(request, proxy.settings.max_file_bytes)
    await _require_member(bus, user.user_id, conversation_id)
    path = "/internal/files"
    headers = proxy.identity_headers("POST", path, user.user_id, conversation_id)
    headers["Content-Type"] = "application/octet-stream"
    if declared is not None:
        headers["Content-Length"] = declared
    body = _Forwarded(request)
    try:
        resp = await proxy.http.post(path, content=body.chunks(), headers=headers)
    except ClientDisconnect:
        log.info("upload_aborted_by_client", conversation_id=conversation_id, forwarded=body.sent)
        return Response(status_code=400)  # nobody is listening any more
    except httpx.TransportError as exc:
        log.warning("files_upload_failed", error=type(exc).__name__, forwarded=body.sent)
        await body.drain(proxy.settings.max_file_bytes - body.sent + 1)
        raise Unavailable("the files service is unavailable", code=FilesErrorCode.FILES_UNAVAILABLE) from exc
    if resp.status_code != 201:
        await body.drain(DRAIN_AFTER_REFUSAL)
        return _relay_error(resp)
    return Response(content=resp.content, status_code=201, media_type="application/json")


# ---------------------------------------------------------------- download


class _RelayResponse(StreamingResponse):
    """Streams the files service's body and always closes it (client gone or not)."""

    def __init__(self, upstream: httpx.Response, headers: dict[str, str]) -> None:
        super().__init__(self._relay(upstream), status_code=upstream.status_code, headers=headers)
        self.upstream = upstream

    @staticmethod
    async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw(RELAY_CHUNK):
                yield chunk
        except httpx.TransportError as exc:
            # the files service aborted (integrity check failed, IPFS went away): so do we, so the
            # client sees a failed transfer, never a short file
            log.warning("file_download_aborted", error=type(exc).__name__)
            raise

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.upstream.aclose()


@router.get(
    "/files/{file_id}",
    summary="Download an encrypted file (streamed, Range supported)",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        206: {"description": "partial content"},
        304: {"description": "not modified"},
        404: {},
        416: {},
    },
)
async def download_file(
    request: Request,
    user: CurrentUser,
    file_id: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")],
) -> Response:
    proxy = _proxy(request)
    path = f"/internal/files/{file_id}"
    headers = proxy.identity_headers("GET", path, user.user_id)
    headers.update({k: v for k, v in request.headers.items() if k.lower() in _FORWARDED_REQUEST_HEADERS})
    try:
        upstream = await proxy.http.send(proxy.http.build_request("GET", path, headers=headers), stream=True)
    except httpx.TransportError as exc:
        log.warning("files_download_failed", error=type(exc).__name__)
        raise Unavailable("the files service is unavailable", code=FilesErrorCode.FILES_UNAVAILABLE) from exc
    if upstream.status_code not in (200, 206):
        try:
            await upstream.aread()
        finally:
            await upstream.aclose()
        if upstream.status_code == 304:
            relayed = {k: v for k, v in upstream.headers.items() if k.lower() in _RELAYED_HEADERS}
            relayed.pop("content-length", None)
            return Response(status_code=304, headers=relayed)
        return _relay_error(upstream)
    relayed = {k: v for k, v in upstream.headers.items() if k.lower() in _RELAYED_HEADERS}
    relayed["Content-Type"] = "application/octet-stream"
    return _RelayResponse(upstream, relayed)
