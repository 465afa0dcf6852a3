"""One error hierarchy for every service, mapped to the SPEC error body in one place.

``{"error": {"code": "snake_case_code", "message": "human sentence"}}`` with the fitting status.
Codes are stable and machine-readable: clients switch on them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field


class ErrorCode:
    """Codes every service may answer: each error class's default, and the service kit's own
    (the bus, storage). The domains' codes live with their schemas (``AuthErrorCode`` in
    ``auth.py``, ``ChatErrorCode``, ``FilesErrorCode``, ``LedgerErrorCode``)."""

    BAD_REQUEST = "bad_request"
    VALIDATION_ERROR = "validation_error"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    SERVICE_UNAVAILABLE = "service_unavailable"
    INTERNAL_ERROR = "internal_error"
    # the service kit
    NATS_UNAVAILABLE = "nats_unavailable"
    SERVICE_TIMEOUT = "service_timeout"
    REPLY_TOO_LARGE = "reply_too_large"
    STORAGE_FULL = "storage_full"
    # HTTP statuses without a class of their own here (the service kit's error handlers)
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"


class GatewayErrorCode:
    """Codes only the gateway (the public edge) answers: request bodies, WebSocket frames, and
    its own view of the services behind it."""

    BODY_TOO_LARGE = "body_too_large"
    INVALID_FRAME = "invalid_frame"
    AUTH_UNAVAILABLE = "auth_unavailable"


class ErrorDetail(BaseModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    message: str


class ErrorBody(BaseModel):
    """The SPEC §7 error body."""

    error: ErrorDetail


class ChainChatError(Exception):
    """Base of every expected error; ``status`` is the HTTP status the gateway answers with."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.http_status = status or self.status
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        return ErrorBody(error=ErrorDetail(code=self.code, message=self.message)).model_dump()


class BadRequest(ChainChatError):
    status = 400
    default_code = ErrorCode.BAD_REQUEST


class ValidationFailed(ChainChatError):
    status = 422
    default_code = ErrorCode.VALIDATION_ERROR


class Unauthorized(ChainChatError):
    status = 401
    default_code = ErrorCode.UNAUTHORIZED


class Forbidden(ChainChatError):
    status = 403
    default_code = ErrorCode.FORBIDDEN


class NotFound(ChainChatError):
    status = 404
    default_code = ErrorCode.NOT_FOUND


class Conflict(ChainChatError):
    status = 409
    default_code = ErrorCode.CONFLICT


class PayloadTooLarge(ChainChatError):
    status = 413
    default_code = ErrorCode.PAYLOAD_TOO_LARGE


class UnsupportedMediaType(ChainChatError):
    """415: an upload's body is not the encrypted bytes (``application/octet-stream``)."""

    status = 415
    default_code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class RateLimited(ChainChatError):
    status = 429
    default_code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.headers["Retry-After"] = str(retry_after)


class Unavailable(ChainChatError):
    status = 503
    default_code = ErrorCode.SERVICE_UNAVAILABLE


class InternalError(ChainChatError):
    status = 500
    default_code = ErrorCode.INTERNAL_ERROR


_BY_STATUS: dict[int, type[ChainChatError]] = {
    cls.status: cls
    for cls in (BadRequest, ValidationFailed, Unauthorized, Forbidden, NotFound, Conflict,
                PayloadTooLarge, Unavailable, InternalError)
}  # fmt: skip


def error_from_wire(code: str, message: str, status: int, retry_after: int | None = None) -> ChainChatError:
    """Rebuild a typed error from an RPC error reply (keeps code and status)."""
    if status == 429:
        return RateLimited(message, retry_after=retry_after or 1, code=code)
    cls = _BY_STATUS.get(status, ChainChatError)
    return cls(message, code=code, status=status)
