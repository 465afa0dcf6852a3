"""The background loop that keeps IPFS in step with the database.

It waits for the node on start-up (``id`` + ``version``), then unpins the CIDs of deleted files and
failed uploads (kept as tasks in the database while the node is down) and, at most every
``IPFS_GC_INTERVAL_S``, asks the node to collect the unpinned blocks they leave behind.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Counter, Gauge

from chainchat_files.ipfs import IpfsError, IpfsUnavailable, KuboClient
from chainchat_files.service import FileService
from chainchat_service.logging import get_logger

log = get_logger(__name__)

IPFS_UP = Gauge(
    "chainchat_files_ipfs_up", "1 when the IPFS node answered the last call of the maintenance loop"
)
UNPIN_BACKLOG = Gauge("chainchat_files_unpin_backlog", "CIDs waiting to be unpinned")
UNPINNED = Counter("chainchat_files_unpinned_total", "Unpin tasks completed")
MAINTENANCE_ERRORS = Counter(
    "chainchat_files_maintenance_errors_total", "Failed maintenance rounds", ["kind"]
)
GC_RUNS = Counter("chainchat_files_ipfs_gc_total", "Garbage collections asked of the IPFS node")

MAX_BACKOFF_S = 30.0
IDLE_WAKE_S = 30.0


class IpfsMaintenance:
    def __init__(self, ipfs: KuboClient, gc_interval_s: float) -> None:
        self.ipfs = ipfs
        self.gc_interval_s = gc_interval_s
        self._wake = asyncio.Event()
        self._gc_wanted = False
        self._last_gc = float("-inf")

    def wake(self) -> None:
        """Something was queued for unpinning (or left unpinned blocks): run a round soon."""
        self._gc_wanted = True
        self._wake.set()

    async def wait_for_node(self) -> None:
        """Block until the node answers ``id`` and ``version``, backing off up to 30 s."""
        delay = 0.5
        while True:
            try:
                info = await self.ipfs.node_info()
            except (IpfsUnavailable, IpfsError) as exc:
                IPFS_UP.set(0)
                log.warning("ipfs_node_waiting", url=self.ipfs.api_url, error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            IPFS_UP.set(1)
            log.info("ipfs_node_ready", url=self.ipfs.api_url, peer_id=info.peer_id, version=info.version,
                     agent=info.agent)  # fmt: skip
            return

    async def run(self, service: FileService) -> None:
        await self.wait_for_node()
        delay = 1.0
        while True:
            self._wake.clear()
            try:
                await self.unpin_pending(service)
                timeout = await self._maybe_gc()
                IPFS_UP.set(1)
                delay = 1.0
            except (IpfsUnavailable, IpfsError) as exc:
                IPFS_UP.set(0)
                MAINTENANCE_ERRORS.labels("ipfs").inc()
                log.warning("ipfs_maintenance_retry", error=str(exc), retry_in=delay)
                timeout, delay = delay, min(delay * 2, MAX_BACKOFF_S)
            except Exception as exc:  # noqa: BLE001 - the database may be busy or away: retry
                MAINTENANCE_ERRORS.labels("other").inc()
                log.warning("ipfs_maintenance_failed", error=str(exc) or type(exc).__name__, retry_in=delay)
                timeout, delay = delay, min(delay * 2, MAX_BACKOFF_S)
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            except TimeoutError:
                pass

    async def unpin_pending(self, service: FileService) -> int:
        """Work through the unpin tasks; raises on the first IPFS failure (the loop backs off)."""
        done = 0
        while tasks := await service.pending_unpins():
            UNPIN_BACKLOG.set(len(tasks))
            for task in tasks:
                await service.process_unpin(task)
                UNPINNED.inc()
                done += 1
        UNPIN_BACKLOG.set(0)
        return done

    async def _maybe_gc(self) -> float:
        """Collect garbage if wanted and allowed now; return how long the loop may sleep."""
        if not self._gc_wanted or self.gc_interval_s <= 0:
            return IDLE_WAKE_S
        wait = self._last_gc + self.gc_interval_s - time.monotonic()
        if wait > 0:
            return min(wait, IDLE_WAKE_S)
        self._last_gc = time.monotonic()
        started = time.perf_counter()
        await self.ipfs.gc()
        self._gc_wanted = False
        GC_RUNS.inc()
        log.info("ipfs_gc_done", seconds=round(time.perf_counter() - started, 3))
        return IDLE_WAKE_S
