"""Who is calling the internal HTTP API: the gateway, on behalf of a user it has authenticated.

The gateway verified the user's access token; the files service must only make sure the identity
headers really come from a gateway (README.md, "Trust model"):

* with ``FILES_INTERNAL_SECRET`` set (required in production): the headers count only with a valid
  HMAC assertion bound to method, path, user, conversation and a one-minute expiry;
* without it (development, tests): only a peer on the loopback interface is believed, and the
  service listens on 127.0.0.1 by default.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from chainchat_files.settings import FilesSettings
from chainchat_protocol.errors import Forbidden, Unauthorized
from chainchat_protocol.files import (
    ASSERTION_HEADER,
    CONVERSATION_HEADER,
    USER_HEADER,
    FilesErrorCode,
    verify_internal_assertion,
)
from chainchat_service.logging import get_logger

log = get_logger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    conversation_id: str


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _identifier(request: Request, header: str, *, required: bool) -> str:
    value = request.headers.get(header, "")
    if not value and not required:
        return ""
    if not _IDENTIFIER.match(value):
        raise Unauthorized(
            f"missing or malformed {header} header", code=FilesErrorCode.INTERNAL_AUTH_REQUIRED
        )
    return value


async def internal_caller(request: Request) -> Caller:
    """The verified caller of an internal route, or 401/403."""
    settings: FilesSettings = request.app.state.settings
    user_id = _identifier(request, USER_HEADER, required=True)
    conversation_id = _identifier(request, CONVERSATION_HEADER, required=False)
    peer = request.client.host if request.client else None
    if settings.files_internal_secret:
        assertion = request.headers.get(ASSERTION_HEADER, "")
        if not verify_internal_assertion(
            settings.files_internal_secret,
            assertion,
            request.method,
            request.url.path,
            user_id,
            conversation_id,
        ):
            log.warning("internal_assertion_rejected", peer=peer, path=request.url.path)
            raise Unauthorized(
                "the internal assertion is missing or invalid", code=FilesErrorCode.INTERNAL_AUTH_REQUIRED
            )
    elif not _is_loopback(peer):
        log.warning("internal_caller_rejected", peer=peer, path=request.url.path)
        raise Forbidden(
            "without FILES_INTERNAL_SECRET only loopback callers are accepted",
            code=FilesErrorCode.INTERNAL_CALLER_REJECTED,
        )
    return Caller(user_id=user_id, conversation_id=conversation_id)


InternalCaller = Annotated[Caller, Depends(internal_caller)]
