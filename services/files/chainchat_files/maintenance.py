"""The background loop that keeps IPFS in step with the database.

It waits for the node on start-up (``id`` + ``version``), then unpins the CIDs of deleted files and
failed uploads (kept as tasks in the database while the node is down) and, at most every
``IPFS_GC_INTERVAL_S``, asks the node to collect the unpinned blocks they leave behind.

Every ``FILES_SWEEP_INTERVAL_S`` it also reconciles the two sides: files no message declared within
``FILES_UNDECLARED_TTL_S`` are deleted, and pins no file record uses (a crash between the node's
``add`` and the database commit) are removed once orphaned for ``IPFS_ORPHAN_GRACE_S`` — a grace far
longer than any upload takes to commit, so an upload in flight on another instance keeps its pin.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import Counter, Gauge

from chainchat_files.ipfs import IpfsError, IpfsUnavailable, KuboClient
from chainchat_files.service import FileService
from chainchat_service.db import utcnow
from chainchat_service.logging import get_logger
from chainchat_service.loops import Backoff, supervise

log = get_logger(__name__)

IPFS_UP = Gauge(
    "chainchat_files_ipfs_up", "1 when the IPFS node answered the last call of the maintenance loop"
)
UNPIN_BACKLOG = Gauge("chainchat_files_unpin_backlog", "CIDs waiting to be unpinned")
UNPINNED = Counter("chainchat_files_unpinned_total", "Unpin tasks completed")
MAINTENANCE_ERRORS = Counter(
    "chainchat_files_maintenance_errors_total", "Failed maintenance rounds", ["kind"]
)
ORPHANS_UNPINNED = Counter("chainchat_files_orphan_pins_removed_total", "Pins no file record used")
GC_RUNS = Counter("chainchat_files_ipfs_gc_total", "Garbage collections asked of the IPFS node")

MAX_BACKOFF_S = 30.0
IDLE_WAKE_S = 30.0


@dataclass(eq=False)
class IpfsMaintenance:
    ipfs: KuboClient
    gc_interval_s: float
    undeclared_ttl_s: float = field(default=0, kw_only=True)
    orphan_grace_s: float = field(default=0, kw_only=True)
    sweep_interval_s: float = field(default=600, kw_only=True)
    _last_sweep: float = field(default=float("-inf"), init=False)
    # CID -> when first seen unused (monotonic)
    _orphans_since: dict[str, float] = field(default_factory=dict, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _node_ready: bool = field(default=False, init=False)
    _gc_wanted: bool = field(default=False, init=False)
    _last_gc: float = field(default=float("-inf"), init=False)

    def wake(self) -> None:
        """Something was queued for unpinning (or left unpinned blocks): run a round soon."""
        self._gc_wanted = True
        self._wake.set()

    async def run(self, service: FileService, *, stop: asyncio.Event | None = None) -> None:
        """Keep IPFS in step for the life of the service (``wake()`` starts a round early)."""
        await supervise("files-ipfs-maintenance", lambda: self.step(service), wake=self._wake, stop=stop,
                        backoff=Backoff(0.5, MAX_BACKOFF_S), on_error=self._failed)  # fmt: skip

    async def step(self, service: FileService) -> float:
        """One round (the first waits for the node); returns how long until the next is due."""
        if not self._node_ready:
            info = await self.ipfs.node_info()
            self._node_ready = True
            log.info("ipfs_node_ready", url=self.ipfs.api_url, peer_id=info.peer_id, version=info.version,
                     agent=info.agent)  # fmt: skip
        await self.unpin_pending(service)
        sweep_in = await self._maybe_sweep(service)
        rest = min(await self._maybe_gc(), sweep_in)
        IPFS_UP.set(1)
        return rest

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, IpfsUnavailable | IpfsError):
            IPFS_UP.set(0)
            if self._node_ready:  # waiting for the node at start-up is not a failed round
                MAINTENANCE_ERRORS.labels("ipfs").inc()
        else:
            MAINTENANCE_ERRORS.labels("other").inc()

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

    async def _maybe_sweep(self, service: FileService) -> float:
        """Reconcile at most every ``sweep_interval_s``; return how long until the next round."""
        wait = self._last_sweep + self.sweep_interval_s - time.monotonic()
        if wait > 0:
            return wait
        self._last_sweep = time.monotonic()
        await self.sweep(service)
        return self.sweep_interval_s

    async def sweep(self, service: FileService) -> None:
        """One reconciliation round (see the module's docstring)."""
        if self.undeclared_ttl_s > 0:
            await service.sweep_undeclared(utcnow() - timedelta(seconds=self.undeclared_ttl_s))
            await self.unpin_pending(service)
        if self.orphan_grace_s > 0:
            await self.remove_orphan_pins(service)

    async def remove_orphan_pins(self, service: FileService) -> int:
        """Unpin what has stayed unused for the whole grace; remember when the rest turned up."""
        now = time.monotonic()
        orphans = await service.unused_cids(await self.ipfs.pinned_roots())
        self._orphans_since = {cid: self._orphans_since.get(cid, now) for cid in orphans}
        removed = 0
        for cid, since in list(self._orphans_since.items()):
            if now - since < self.orphan_grace_s:
                continue
            if await service.unpin_if_unused(cid):  # re-checks the records right before unpinning
                ORPHANS_UNPINNED.inc()
                removed += 1
                log.warning("orphan_pin_removed", cid=cid, orphaned_s=round(now - since))
            del self._orphans_since[cid]
        if removed:
            self._gc_wanted = True
        return removed

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
