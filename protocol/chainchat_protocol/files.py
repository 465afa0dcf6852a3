"""The files domain on the wire: NATS subjects and models, and the gateway→files HTTP contract.

NATS (request/reply, queue group ``files``):

* ``files.file.access.v1``  {user_id, file_id} → {file_id, conversation_id}, or ``NotFound`` when
  the file does not exist, was deleted, or the user is not a current member of its conversation.
* ``files.file.get.v1``     {user_id, file_id} → the file's public record (same access rule).

Bulk bytes travel over HTTP between the gateway and the files service (SPEC §2). The gateway has
verified the caller's access token and passes the caller's identity in headers; the files service
believes those headers only when they carry a valid :func:`sign_internal_assertion` MAC (keyed by
``FILES_INTERNAL_SECRET``, bound to method, path, user and conversation, valid for a minute) or,
when no secret is configured (development and tests only), when the peer is on the loopback
interface. See ``services/files/README.md`` for the whole trust model.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from chainchat_protocol.b64 import b64e
from chainchat_protocol.envelope import Identifier
from chainchat_protocol.log_entry import HEX_SHA256_PATTERN
from chainchat_protocol.rpc import Rpc

__all__ = [
    "ASSERTION_HEADER",
    "ASSERTION_TTL_S",
    "CONVERSATION_HEADER",
    "FILE_ACCESS",
    "FILE_GET",
    "FilesErrorCode",
    "USER_HEADER",
    "FileAccessReply",
    "FileAccessRequest",
    "FileGetRequest",
    "FilePublic",
    "FileUploaded",
    "sign_internal_assertion",
    "verify_internal_assertion",
]


class FilesErrorCode:
    """Stable error codes of file transfers (the files service and the gateway's file routes)."""

    FILE_NOT_FOUND = "file_not_found"
    FILE_TOO_LARGE = "file_too_large"
    FILE_CONTENT_UNAVAILABLE = "file_content_unavailable"
    FILES_UNAVAILABLE = "files_unavailable"
    CONVERSATION_REQUIRED = "conversation_required"
    INVALID_CONTENT_LENGTH = "invalid_content_length"
    INVALID_RANGE = "invalid_range"
    IPFS_UNAVAILABLE = "ipfs_unavailable"
    IPFS_ERROR = "ipfs_error"
    # the gateway -> files hop (see the module docstring)
    INTERNAL_AUTH_REQUIRED = "internal_auth_required"
    INTERNAL_CALLER_REJECTED = "internal_caller_rejected"


class FileAccessRequest(BaseModel):
    """May ``user_id`` read ``file_id``?"""

    model_config = ConfigDict(extra="forbid")
    user_id: Identifier
    file_id: Identifier


class FileAccessReply(BaseModel):
    """The file is readable by the user; ``conversation_id`` is the conversation it belongs to."""

    file_id: str
    conversation_id: str


class FileGetRequest(FileAccessRequest):
    """The file's record, for a user allowed to read it."""


class FilePublic(BaseModel):
    """What anyone allowed to read a file may know about it (never the key: clients hold that)."""

    file_id: str
    conversation_id: str
    uploader_id: str
    cid: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=HEX_SHA256_PATTERN)
    created_at: datetime


class FileUploaded(BaseModel):
    """Reply of ``POST /api/v1/files`` (and of the files service's internal upload)."""

    file_id: str
    cid: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=HEX_SHA256_PATTERN)


FILE_ACCESS: Rpc[FileAccessRequest, FileAccessReply] = Rpc(
    "files.file.access.v1", FileAccessRequest, FileAccessReply
)
FILE_GET: Rpc[FileGetRequest, FilePublic] = Rpc("files.file.get.v1", FileGetRequest, FilePublic)

# ---------------------------------------------------------------- gateway → files HTTP identity

USER_HEADER = "X-ChainChat-User-Id"
CONVERSATION_HEADER = "X-ChainChat-Conversation-Id"
ASSERTION_HEADER = "X-ChainChat-Assertion"
ASSERTION_TTL_S = 60
_ASSERTION_VERSION = "v1"


def _assertion_mac(
    secret: str, method: str, path: str, user_id: str, conversation_id: str, expires: int, nonce: str
) -> str:
    message = "\n".join(
        [_ASSERTION_VERSION, method.upper(), path, user_id, conversation_id, str(expires), nonce]
    )
    return b64e(hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest())


def sign_internal_assertion(
    secret: str, method: str, path: str, user_id: str, conversation_id: str = "", *, now: float | None = None
) -> str:
    """The gateway's statement "this request comes from ``user_id``", for the files service.

    Bound to the method, the path and the identity, and expiring after :data:`ASSERTION_TTL_S`, so
    a captured header cannot be replayed for another file, user or conversation for long.
    """
    expires = int(now if now is not None else time.time()) + ASSERTION_TTL_S
    nonce = secrets.token_hex(8)
    mac = _assertion_mac(secret, method, path, user_id, conversation_id, expires, nonce)
    return f"{_ASSERTION_VERSION}.{expires}.{nonce}.{mac}"


def verify_internal_assertion(
    secret: str,
    assertion: str,
    method: str,
    path: str,
    user_id: str,
    conversation_id: str = "",
    *,
    now: float | None = None,
) -> bool:
    """True when ``assertion`` was made with ``secret`` for exactly this request and has not expired."""
    parts = assertion.split(".")
    if len(parts) != 4 or parts[0] != _ASSERTION_VERSION or not parts[1].isdigit():
        return False
    expires, nonce, mac = int(parts[1]), parts[2], parts[3]
    current = now if now is not None else time.time()
    if expires < current or expires > current + 2 * ASSERTION_TTL_S:
        return False
    expected = _assertion_mac(secret, method, path, user_id, conversation_id, expires, nonce)
    return hmac.compare_digest(expected, mac)
