"""Log entries from JetStream: fetch a batch, append it in one transaction, then acknowledge.

The durable pull consumer is shared by every ledger instance; only the lease holder fetches, so
one writer appends in stream order. A message is acknowledged only after the transaction that
appended it committed — a crash in between redelivers it, and the append is idempotent by
``(kind, id)``. Malformed messages are terminated (never redelivered) with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError

from chainchat_ledger import metrics
from chainchat_ledger.leader import LeaderLease
from chainchat_ledger.log import TransparencyLog
from chainchat_ledger.settings import LedgerSettings
from chainchat_protocol.ledger import MAX_ENTRY_BYTES, valid_entry_id
from chainchat_protocol.log_entry import LogEntry
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger
from chainchat_service.outbox import ensure_ledger_stream

log = get_logger(__name__)

MAX_BACKOFF_S = 5.0


@dataclass(frozen=True, slots=True)
class Rejected:
    msg: Msg
    reason: str


def parse_entry(msg: Msg) -> LogEntry | Rejected:
    """The LogEntry a stream message carries, or why it is not one."""
    if len(msg.data) > MAX_ENTRY_BYTES:
        return Rejected(msg, f"payload of {len(msg.data)} bytes exceeds {MAX_ENTRY_BYTES}")
    parts = msg.subject.split(".")
    subject_kind = parts[2] if len(parts) == 4 else ""
    try:
        entry = LogEntry.model_validate_json(msg.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        return Rejected(msg, f"invalid {where}: {first.get('msg', 'invalid')}"[:200])
    if entry.kind != subject_kind:
        return Rejected(msg, f"entry kind {entry.kind!r} does not match subject {msg.subject!r}")
    if not valid_entry_id(entry.id):
        return Rejected(msg, "entry id must be 1-200 printable ASCII characters without spaces")
    return entry


class EntryConsumer:
    def __init__(
        self,
        bus: Bus,
        tlog: TransparencyLog,
        lease: LeaderLease,
        settings: LedgerSettings,
        on_appended: Callable[[], None] = lambda: None,
    ) -> None:
        self.bus = bus
        self.tlog = tlog
        self.lease = lease
        self.settings = settings
        self.on_appended = on_appended
        self._sub: JetStreamContext.PullSubscription | None = None
        self._active = False

    async def _subscription(self) -> JetStreamContext.PullSubscription:
        if self._sub is None:
            await ensure_ledger_stream(self.bus)
            config = ConsumerConfig(
                durable_name=self.settings.consumer_durable,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self.settings.consumer_ack_wait_s,
                max_ack_pending=self.settings.append_batch_size * 4,
                max_deliver=-1,
            )
            self._sub = await self.bus.js.pull_subscribe(
                Subject.LEDGER_ENTRY_ALL,
                durable=self.settings.consumer_durable,
                stream=Subject.LEDGER_STREAM,
                config=config,
            )
        return self._sub

    async def run(self) -> None:
        """Fetch and append while this instance holds the lease; back off on failures."""
        try:
            await self._loop()
        except asyncio.CancelledError:
            # a pull subscription's queue is only emptied by fetch(): left subscribed, it would
            # make the connection's drain at shutdown wait for ever
            await asyncio.shield(self._drop_subscription())
            raise

    async def _drop_subscription(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _loop(self) -> None:
        delay = 0.2
        while True:
            try:
                if not self.lease.is_leader:
                    if self._active:  # messages delivered but not fetched return after ack_wait
                        await self._drop_subscription()
                    self._set_active(False)
                    await asyncio.sleep(0.25)
                    continue
                self._set_active(True)
                msgs = await self.fetch_batch(await self._subscription())
                if msgs:
                    await self.process(msgs)
                delay = 0.2
            except Exception as exc:  # noqa: BLE001 - NATS or the database may be down for a while
                metrics.LOOP_ERRORS.labels("consumer").inc()
                log.warning("consume_failed", error=str(exc) or type(exc).__name__, retry_in=delay)
                await self._drop_subscription()
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)

    async def fetch_batch(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        """Up to ``append_batch_size`` messages: wait up to 1 s for the first, then keep
        collecting for at most ``append_linger_s`` — the server hands a pull a few dozen messages
        at a time, and one transaction per few dozen entries would cap the append rate."""
        size = self.settings.append_batch_size
        try:
            msgs = await sub.fetch(size, timeout=1.0)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        deadline = time.monotonic() + self.settings.append_linger_s
        while len(msgs) < size:
            left = deadline - time.monotonic()
            if left <= 0.001:
                break
            try:
                msgs += await sub.fetch(size - len(msgs), timeout=left)
            except (TimeoutError, nats.errors.TimeoutError):
                break
        return msgs

    def _set_active(self, active: bool) -> None:
        if active != self._active:
            log.info("stream_consumer_" + ("started" if active else "paused"))
            self._active = active

    async def process(self, msgs: list[Msg]) -> int:
        """Append the well-formed entries of one fetched batch; return how many were new."""
        started = time.perf_counter()
        good: list[tuple[Msg, LogEntry]] = []
        for msg in msgs:
            parsed = parse_entry(msg)
            if isinstance(parsed, Rejected):
                await self._terminate(parsed.msg, parsed.reason)
            else:
                good.append((msg, parsed))
        if not good:
            return 0
        try:
            outcomes = await self.tlog.append([entry for _, entry in good])
        except Exception:
            for msg, _ in good:  # not appended: have them back soon rather than after ack_wait
                await msg.nak(delay=1.0)
            raise
        new = 0
        for (msg, _), outcome in zip(good, outcomes, strict=True):
            if outcome.conflict:
                await self._terminate(msg, f"conflicts with leaf {outcome.leaf_index} (same kind and "
                                           "id, another digest)")  # fmt: skip
                continue
            await msg.ack()
            new += 0 if outcome.duplicate else 1
        metrics.ENTRIES_CONSUMED.labels("appended").inc(new)
        metrics.ENTRIES_CONSUMED.labels("duplicate").inc(len(good) - new)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        if new:
            self.on_appended()
        return new

    async def _terminate(self, msg: Msg, reason: str) -> None:
        metrics.ENTRIES_CONSUMED.labels("rejected").inc()
        log.warning("ledger_entry_rejected", subject=msg.subject, reason=reason,
                    stream_seq=_stream_seq(msg))  # fmt: skip
        await msg.term()


def _stream_seq(msg: Msg) -> int | None:
    try:
        return int(msg.metadata.sequence.stream)
    except Exception:  # noqa: BLE001 - metadata is only for the log line
        return None
