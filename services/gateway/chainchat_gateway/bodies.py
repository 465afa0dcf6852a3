"""One rule for every request body the gateway reads: a size cap and a nesting cap (SPEC §7).

Every route's body is read here, before routing, up to its cap; a larger one is refused with 413
at once (by ``Content-Length`` when declared, else as soon as the stream passes the cap), so no
route ever holds more than its cap in memory. A JSON body nested deeper than :data:`MAX_JSON_DEPTH`
is refused with 422: Python's parser would raise ``RecursionError`` (not a ``ValueError``) on it,
and none of our schemas nests more than a few levels. The encrypted file upload is the one body
streamed on, unread, to the files service, which enforces ``MAX_FILE_BYTES`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainchat_protocol.chat import MAX_SEND_BODY_BYTES, envelope_too_large
from chainchat_protocol.errors import (
    ChainChatError,
    ErrorCode,
    GatewayErrorCode,
    PayloadTooLarge,
    ValidationFailed,
)
from chainchat_service.web import error_response

#: any JSON body but a send: 256 member ids in a new group are ~17 KiB, a SIWE message < 2 KiB
MAX_JSON_BODY_BYTES: Final = 64 * 1024
MAX_JSON_DEPTH: Final = 32

_SEND = re.compile(r"^/api/v1/conversations/[^/]+/messages/?$")
_UPLOAD = re.compile(r"^/api/v1/files/?$")
_TOKENS = re.compile(rb'\\.|["\[\]{}]')


def body_too_large() -> PayloadTooLarge:
    return PayloadTooLarge(
        f"a request body may be at most {MAX_JSON_BODY_BYTES} bytes", code=GatewayErrorCode.BODY_TOO_LARGE
    )


def body_limit(method: str, path: str) -> tuple[int, Callable[[], ChainChatError]] | None:
    """The cap of one route's body and the error above it; None for the streamed upload."""
    if method == "POST" and _UPLOAD.match(path):
        return None
    if method == "POST" and _SEND.match(path):
        return MAX_SEND_BODY_BYTES, envelope_too_large
    return MAX_JSON_BODY_BYTES, body_too_large


def nesting_depth(body: bytes, stop_at: int = MAX_JSON_DEPTH + 1) -> int:
    """How deep ``[``/``{`` nest in ``body`` outside strings (counting stops at ``stop_at``)."""
    depth = deepest = 0
    in_string = False
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token[:1] == b"\\":
            continue
        if token == b'"':
            in_string = not in_string
        elif not in_string:
            depth += 1 if token in (b"[", b"{") else -1
            deepest = max(deepest, depth)
            if deepest >= stop_at:
                break
    return deepest


class BodyLimitMiddleware:
    """Plain ASGI middleware reading each capped body whole before the app sees it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = body_limit(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        cap, too_large = limit
        try:
            body = await _read_capped(scope, receive, cap, too_large)
            if nesting_depth(body) > MAX_JSON_DEPTH:
                raise ValidationFailed(
                    f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels",
                    code=ErrorCode.VALIDATION_ERROR,
                )
        except ChainChatError as exc:
            response = error_response(exc.http_status, exc.code, exc.message, exc.headers or None)
            await response(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_capped(
    scope: Scope, receive: Receive, cap: int, too_large: Callable[[], ChainChatError]
) -> bytes:
    declared = Headers(scope=scope).get("content-length", "")
    if declared.isdigit() and (len(declared) > 15 or int(declared) > cap):
        raise too_large()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            raise too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then whatever the connection says next (e.g. a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
