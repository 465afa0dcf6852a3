"""The internal HTTP API the gateway streams file bytes through (never exposed to clients).

* ``POST /internal/files`` — body: the encrypted bytes (``application/octet-stream``), streamed on to
  IPFS; headers: the caller and the conversation (see ``trust.py``). → 201 ``FileUploaded``.
* ``GET /internal/files/{file_id}`` — the bytes from IPFS ``cat``, with ``ETag``, ``Range`` / 206 /
  416 and ``If-None-Match`` / 304; the SHA-256 is checked on full reads (``streams.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from chainchat_files.ipfs import IpfsError
from chainchat_files.models import FileRecord
from chainchat_files.ranges import ByteRange, etag_matches, if_range_allows, parse_range
from chainchat_files.service import FileService
from chainchat_files.streams import FileTooLarge, UploadMeter, verified_content
from chainchat_files.trust import InternalCaller
from chainchat_protocol.chat import ChatErrorCode
from chainchat_protocol.errors import (
    ChainChatError,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from chainchat_protocol.files import FilesErrorCode, FileUploaded
from chainchat_service.logging import get_logger

log = get_logger(__name__)

router = APIRouter(prefix="/internal", tags=["internal"])

# after an early answer, read at most this much more of a body nobody wants (see UploadMeter.drain)
DRAIN_AFTER_LIMIT = 256 * 1024
# IPFS sends ~64 KiB pieces; regrouping them costs one copy and saves per-chunk work at every hop
STREAM_CHUNK = 256 * 1024
FileId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def get_service(request: Request) -> FileService:
    service: FileService = request.app.state.files.service
    return service


ServiceDep = Annotated[FileService, Depends(get_service)]


def require_octet_stream(content_type: str | None) -> None:
    """Uploads are opaque ciphertext: anything but ``application/octet-stream`` is refused (415)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/octet-stream":
        raise UnsupportedMediaType("the body must be the encrypted bytes, sent as application/octet-stream")


def declared_length(content_length: str | None, limit: int) -> int | None:
    """The ``Content-Length``, refused at once (413) when it exceeds ``limit``."""
    if content_length is None:
        return None
    if not content_length.strip().isdigit():
        raise ValidationFailed(
            "Content-Length must be a number of bytes", code=FilesErrorCode.INVALID_CONTENT_LENGTH
        )
    size = int(content_length)
    if size > limit:
        raise FileTooLarge(f"the file is larger than the limit of {limit} bytes")
    return size


@router.post("/files", status_code=201, response_model=FileUploaded, summary="Store an encrypted file")
async def upload_file(request: Request, caller: InternalCaller, service: ServiceDep) -> Response:
    if not caller.conversation_id:
        raise ValidationFailed(
            "the conversation header is required", code=FilesErrorCode.CONVERSATION_REQUIRED
        )
    require_octet_stream(request.headers.get("content-type"))
    limit = service.settings.max_file_bytes
    declared_length(request.headers.get("content-length"), limit)
    meter = UploadMeter(request.stream(), limit)
    try:
        if not await service.is_member(caller.user_id, caller.conversation_id):
            raise NotFound("no such conversation", code=ChatErrorCode.CONVERSATION_NOT_FOUND)
        record = await service.upload(
            meter, uploader_id=caller.user_id, conversation_id=caller.conversation_id
        )
    except ClientDisconnect:
        log.info("upload_aborted_by_client", conversation_id=caller.conversation_id, received=meter.size)
        return Response(status_code=400)  # nobody is listening any more
    except PayloadTooLarge:
        await meter.drain(DRAIN_AFTER_LIMIT)
        raise
    except ChainChatError:
        # answer once the client has finished sending (bounded by the limit), so it reads the answer
        await meter.drain(limit - meter.size + 1)
        raise
    body = FileUploaded(file_id=record.id, cid=record.cid, size=record.size, sha256=record.sha256)
    return JSONResponse(body.model_dump(), status_code=201)


class UpstreamStreamingResponse(StreamingResponse):
    """Streams ``content`` and always closes the IPFS response under it (client gone or not)."""

    def __init__(
        self, content: AsyncIterator[bytes], upstream: httpx.Response | None, **kwargs: object
    ) -> None:
        super().__init__(content, **kwargs)  # type: ignore[arg-type]
        self.upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.upstream is not None:
                await self.upstream.aclose()


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


def _representation_headers(record: FileRecord) -> dict[str, str]:
    return {
        "ETag": f'"{record.sha256}"',
        "Accept-Ranges": "bytes",
        # ciphertext is immutable, but access is checked per request: revalidate every time
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    }


@router.get("/files/{file_id}", summary="Stream an encrypted file", response_class=Response)
async def download_file(
    file_id: FileId, request: Request, caller: InternalCaller, service: ServiceDep
) -> Response:
    record = await service.readable(caller.user_id, file_id)
    headers = _representation_headers(record)
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    byte_range: ByteRange | None = None
    if if_range_allows(request.headers.get("if-range"), headers["ETag"]):
        byte_range = parse_range(request.headers.get("range"), record.size)
    offset, length = (byte_range.start, byte_range.length) if byte_range else (0, record.size)
    upstream = await _open_cat(service, record, offset, length, partial=byte_range is not None)
    full_read = byte_range is None or byte_range.is_full
    body = verified_content(
        upstream.aiter_bytes(STREAM_CHUNK) if upstream is not None else _nothing(),
        expected_size=length,
        expected_sha256=record.sha256 if full_read else None,
        label=record.id,
    )
    headers["Content-Length"] = str(length)
    if byte_range is not None:
        headers["Content-Range"] = byte_range.content_range()
    return UpstreamStreamingResponse(
        body,
        upstream,
        status_code=206 if byte_range else 200,
        headers=headers,
        media_type="application/octet-stream",
    )


async def _open_cat(
    service: FileService, record: FileRecord, offset: int, length: int, *, partial: bool
) -> httpx.Response | None:
    if length == 0:
        return None  # an empty file: nothing to fetch
    try:
        return await service.ipfs.open_cat(record.cid, offset, length if partial else None)
    except IpfsError as exc:
        # the record says the node holds these bytes and it does not: the store lost or broke them
        log.error("file_content_missing", file_id=record.id, cid=record.cid, error=str(exc))
        raise Unavailable(
            "the file's content is not available", code=FilesErrorCode.FILE_CONTENT_UNAVAILABLE
        ) from exc
