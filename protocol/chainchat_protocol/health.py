"""Health schema shared by every service (NATS ``<service>.health.v1`` and ``GET /readyz``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from chainchat_protocol.rpc import Empty, Rpc


class DependencyCheck(BaseModel):
    ok: bool
    latency_ms: float | None = None
    detail: str | None = None


class HealthReply(BaseModel):
    service: str
    instance: str
    version: str
    ready: bool
    uptime_s: float
    checks: dict[str, DependencyCheck] = Field(default_factory=dict)


SERVICES: tuple[str, ...] = ("gateway", "auth", "chat", "files", "ledger")


def health_rpc(service: str) -> Rpc[Empty, HealthReply]:
    """The health subject of one service, e.g. ``auth.health.v1``."""
    return Rpc(f"{service}.health.v1", Empty, HealthReply)
