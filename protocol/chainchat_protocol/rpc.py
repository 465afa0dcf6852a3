"""Typed NATS request/reply: every subject is declared once with its request and reply models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)

CORRELATION_HEADER = "X-Correlation-ID"

#: The most a reply that lists things (history, conversations) carries: half of NATS's default
#: ``max_payload`` (1 MiB), leaving room for the reply's wrapping and headers. A listing that would
#: exceed it returns fewer items and ``has_more`` instead of a reply the bus cannot carry.
MAX_REPLY_BYTES: Final = 512 * 1024


def fitting(items: Sequence[BaseModel], budget: int = MAX_REPLY_BYTES) -> int:
    """How many of ``items``, from the first, fit together in ``budget`` bytes of JSON (at least
    one when there is any: a single item is always far below the budget)."""
    used = 0
    for count, item in enumerate(items):
        used += len(item.model_dump_json()) + 1
        if used > budget:
            return max(count, 1)
    return len(items)


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
