"""System routes: the stack's aggregated readiness."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from chainchat_gateway.deps import BusDep, RuntimeDep
from chainchat_protocol.errors import ChainChatError
from chainchat_protocol.health import SERVICES, DependencyCheck, HealthReply, health_rpc
from chainchat_protocol.rpc import Empty

router = APIRouter(tags=["system"])


class ServiceStatus(BaseModel):
    ready: bool
    latency_ms: float
    instance: str | None = None
    checks: dict[str, DependencyCheck] = {}
    error: str | None = None


class StackReadiness(BaseModel):
    ready: bool
    services: dict[str, ServiceStatus]


async def _probe(bus: BusDep, runtime: RuntimeDep, service: str) -> ServiceStatus:
    started = time.perf_counter()
    try:
        if service == runtime.name:
            health: HealthReply = await runtime.health()
        else:
            health = await bus.request(health_rpc(service), Empty(), timeout=2.0)
        return ServiceStatus(
            ready=health.ready,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            instance=health.instance,
            checks=health.checks,
        )
    except ChainChatError as exc:
        return ServiceStatus(
            ready=False, latency_ms=round((time.perf_counter() - started) * 1000, 2), error=exc.message
        )


@router.get(
    "/readyz",
    response_model=StackReadiness,
    summary="Readiness of every service, asked over NATS",
    responses={503: {"model": StackReadiness}},
)
async def stack_readiness(bus: BusDep, runtime: RuntimeDep) -> JSONResponse:
    results = await asyncio.gather(*(_probe(bus, runtime, s) for s in SERVICES))
    body = StackReadiness(
        ready=all(r.ready for r in results), services=dict(zip(SERVICES, results, strict=True))
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)
