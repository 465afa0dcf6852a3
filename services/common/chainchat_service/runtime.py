"""What every service process has: settings, the NATS bus, dependency checks, health."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from chainchat_protocol import __version__
from chainchat_protocol.health import DependencyCheck, HealthReply, health_rpc
from chainchat_protocol.rpc import Empty
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger
from chainchat_service.loops import Backoff, OnError, Step, supervise
from chainchat_service.settings import ServiceSettings

Check = Callable[[], Awaitable[None]]
OnConnected = Callable[[Bus], Awaitable[None]]

log = get_logger(__name__)


class ServiceRuntime:
    """Connects to NATS in the background (services start in any order), serves health."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.bus = Bus(
            settings.nats_url,
            f"{self.name}-{settings.instance_id}",
            stream_replicas=settings.nats_stream_replicas,
            user=settings.nats_user or None,
            password=settings.nats_secret() or None,
        )
        self.started_at = time.monotonic()
        self._checks: dict[str, Check] = {"nats": self._check_nats}
        self._on_connected: list[OnConnected] = []
        self._ready_event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.background: list[asyncio.Task[None]] = []

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def on_connected(self, callback: OnConnected) -> None:
        """Run ``callback`` once NATS is connected (subscriptions, JetStream set-up)."""
        self._on_connected.append(callback)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect_and_subscribe(), name=f"{self.name}-connect")

    async def _connect_and_subscribe(self) -> None:
        await self.bus.connect()
        await self.bus.serve(health_rpc(self.name), self._health_handler, queue=f"{self.name}-health")
        for callback in self._on_connected:
            await callback(self.bus)
        self._ready_event.set()
        log.info("service_started", instance=self.settings.instance_id)

    async def wait_started(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready_event.wait(), timeout)

    def spawn(self, coro: Awaitable[None], name: str) -> None:
        """Keep a background loop alive for the life of the service."""
        self.background.append(asyncio.ensure_future(coro))
        self.background[-1].set_name(name)

    def supervise(
        self,
        name: str,
        step: Step,
        *,
        backoff: Backoff = Backoff(),
        wake: asyncio.Event | None = None,
        on_error: OnError | None = None,
        describe: Callable[[Exception], str] | None = None,
    ) -> None:
        """Run ``step`` for the life of the service with capped back-off (``loops.supervise``);
        it stops at shutdown."""
        loop = supervise(
            name, step, backoff=backoff, wake=wake, stop=self._stopping, on_error=on_error, describe=describe
        )
        self.spawn(loop, name)

    async def stop(self) -> None:
        self._stopping.set()
        for task in [*self.background, *([self._task] if self._task else [])]:
            task.cancel()
        for task in [*self.background, *([self._task] if self._task else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.bus.close()

    async def _check_nats(self) -> None:
        if not self.bus.connected:
            raise ConnectionError("not connected")
        await self.bus.nc.flush(timeout=2)

    async def health(self) -> HealthReply:
        checks: dict[str, DependencyCheck] = {}
        for name, check in self._checks.items():
            started = time.perf_counter()
            try:
                await asyncio.wait_for(check(), timeout=3)
                checks[name] = DependencyCheck(ok=True, latency_ms=_ms(started))
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
                detail = str(exc) or type(exc).__name__
                checks[name] = DependencyCheck(ok=False, latency_ms=_ms(started), detail=detail[:200])
        return HealthReply(
            service=self.name,
            instance=self.settings.instance_id,
            version=__version__,
            ready=all(c.ok for c in checks.values()) and self._ready_event.is_set(),
            uptime_s=round(time.monotonic() - self.started_at, 3),
            checks=checks,
        )

    async def _health_handler(self, _: Empty) -> HealthReply:
        return await self.health()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
