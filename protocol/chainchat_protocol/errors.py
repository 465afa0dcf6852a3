"""One error hierarchy for every service, mapped to the SPEC error body in one place.

``{"error": {"code": "snake_case_code", "message": "human sentence"}}`` with the fitting status.
Codes are stable and machine-readable: clients switch on them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    message: str


class ErrorBody(BaseModel):
    """The SPEC §7 error body."""

    error: ErrorDetail


class ChainChatError(Exception):
    """Base of every expected error; ``status`` is the HTTP status the gateway answers with."""

    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"

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
    default_code = "bad_request"


class ValidationFailed(ChainChatError):
    status = 422
    default_code = "validation_error"


class Unauthorized(ChainChatError):
    status = 401
    default_code = "unauthorized"


class Forbidden(ChainChatError):
    status = 403
    default_code = "forbidden"


class NotFound(ChainChatError):
    status = 404
    default_code = "not_found"


class Conflict(ChainChatError):
    status = 409
    default_code = "conflict"


class PayloadTooLarge(ChainChatError):
    status = 413
    default_code = "payload_too_large"


class RateLimited(ChainChatError):
    status = 429
    default_code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        self.headers["Retry-After"] = str(retry_after)


class Unavailable(ChainChatError):
    status = 503
    default_code = "service_unavailable"


class InternalError(ChainChatError):
    status = 500
    default_code = "internal_error"


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
