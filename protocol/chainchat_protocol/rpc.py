"""Typed NATS request/reply: every subject is declared once with its request and reply models."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)

CORRELATION_HEADER = "X-Correlation-ID"


@dataclass(frozen=True)
class Rpc(Generic[Req, Rep]):
    """A request/reply subject bound to its schemas, e.g. ``AUTH_HEALTH``."""

    subject: str
    request: type[Req]
    reply: type[Rep]


class WireError(BaseModel):
    code: str
    message: str
    status: int
    retry_after: int | None = None


class RpcReply(BaseModel):
    """What travels back on the reply subject: exactly one of ``data`` and ``error``."""

    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] | None = None
    error: WireError | None = None


class Empty(BaseModel):
    """A request or reply without fields."""
