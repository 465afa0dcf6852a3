"""Leader lease on NATS KV: exactly one ledger instance consumes the stream and anchors.

The lease is one key in a KV bucket whose entries expire after ``ttl``. The holder renews it with
a compare-and-set on the revision it wrote (``update(last=revision)``); others try ``create``,
which only succeeds once the key has expired or was released. A holder that cannot renew for most
of a ``ttl`` (NATS down, process stalled) stops acting as leader on its own, before anyone else can
take over. Even if two instances ever overlapped, the database compare-and-set on the tree size and
the pending-transaction record keep the log and the nonce sequence single-writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from chainchat_ledger import metrics
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger
from chainchat_service.loops import Backoff, supervise

log = get_logger(__name__)

LEASE_KEY = "anchorer"


class LeaderLease:
    def __init__(self, bus: Bus, bucket: str, instance_id: str, ttl: float) -> None:
        self.bus = bus
        self.bucket = bucket
        self.instance_id = instance_id
        self.ttl = ttl
        self._kv: KeyValue | None = None
        self._revision: int | None = None
        self._renewed_at = float("-inf")

    @property
    def is_leader(self) -> bool:
        # act only while the lease is safely younger than its expiry
        return self._revision is not None and time.monotonic() - self._renewed_at < self.ttl * 0.75

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            config = KeyValueConfig(bucket=self.bucket, ttl=self.ttl, history=1,
                                    storage=StorageType.MEMORY)  # fmt: skip
            # an existing bucket (e.g. created with an older ttl) is opened as it is
            self._kv = await self.bus.ensure_key_value(config)
        return self._kv

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Renew or try to acquire every ttl/3 seconds, for the life of the service; release the
        lease at the end (a clean stop), so a standby takes over without waiting for expiry."""
        try:
            await supervise("ledger-leader", self.step, backoff=Backoff(0.5, self.ttl / 3), stop=stop,
                            on_error=self._failed)  # fmt: skip
        finally:
            await asyncio.shield(self.release())

    async def step(self) -> float:
        await self.renew_or_acquire()
        return self.ttl / 3

    def _failed(self, exc: Exception) -> None:
        metrics.LOOP_ERRORS.labels("leader").inc()
        if self._revision is not None and not self.is_leader:
            self._lose("lease could not be renewed", error=str(exc) or type(exc).__name__)
        self._kv = None  # NATS may be down: open the bucket again

    async def renew_or_acquire(self) -> bool:
        kv = await self._bucket()
        value = self.instance_id.encode()
        if self._revision is not None:
            try:
                self._revision = await kv.update(LEASE_KEY, value, last=self._revision)
                self._renewed_at = time.monotonic()
            except KeyWrongLastSequenceError:
                self._lose("another instance holds the lease")
            return self.is_leader
        try:
            self._revision = await kv.create(LEASE_KEY, value)
        except KeyWrongLastSequenceError:
            return False
        self._renewed_at = time.monotonic()
        metrics.IS_LEADER.set(1)
        log.info("leader_acquired", instance=self.instance_id, ttl_s=self.ttl)
        return True

    def _lose(self, reason: str, **detail: object) -> None:
        self._revision = None
        metrics.IS_LEADER.set(0)
        log.warning("leader_lost", instance=self.instance_id, reason=reason, **detail)

    async def release(self) -> None:
        """Give the lease up on a clean stop so another instance takes over at once."""
        if self._revision is None or self._kv is None:
            return
        revision, self._revision = self._revision, None
        metrics.IS_LEADER.set(0)
        with contextlib.suppress(Exception):
            await self._kv.delete(LEASE_KEY, last=revision)
        log.info("leader_released", instance=self.instance_id)
