"""Transactional outbox: events written in the same transaction as the state change, then relayed.

A crash between commit and publish loses nothing: the relay publishes every row not yet marked,
to JetStream with ``Nats-Msg-Id`` (the stream drops duplicates inside its window and the ledger
appends idempotently by entry id beyond it), or to core NATS for best-effort deliveries.

Log entries go out batched: the consecutive log-entry rows of one kind in a round become ONE
stream message on their ``ledger.entry.<kind>.v1`` subject, a JSON array of the entries (a lone
entry stays the single JSON object it always was). JetStream fsyncs every acknowledged write, so
one write per batch instead of per entry is what lets the stream, and the ledger behind it, keep up.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from prometheus_client import Counter, Gauge
from pydantic import BaseModel
from sqlalchemy import LargeBinary, delete, func, update
from sqlmodel import Column, Field, SQLModel, col, select

from chainchat_protocol.log_entry import LogEntry, LogKind
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.db import Database
from chainchat_service.logging import get_logger
from chainchat_service.loops import Backoff, supervise

log = get_logger(__name__)

OUTBOX_PUBLISHED = Counter("chainchat_outbox_published_total", "Outbox rows published", ["service"])
OUTBOX_BACKLOG = Gauge("chainchat_outbox_backlog", "Outbox rows waiting to be published", ["service"])

LEDGER_STREAM_CONFIG = StreamConfig(
    name=Subject.LEDGER_STREAM,
    subjects=[Subject.LEDGER_ENTRY_ALL],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    discard=DiscardPolicy.OLD,
    max_age=7 * 24 * 3600,
    duplicate_window=600,
)


# log entries per stream message (the ledger refuses bigger batches); 200 of the largest entries
# (4 KiB) stay below NATS's default 1 MiB payload
MAX_ENTRIES_PER_MESSAGE = 200
_LOG_ENTRY_SUBJECTS = frozenset(Subject.LEDGER_ENTRY.format(kind=kind) for kind in get_args(LogKind))


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(max_length=200)
    msg_id: str = Field(max_length=200, unique=True)
    jetstream: bool = True
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    published_at: datetime | None = Field(default=None, index=True)
    attempts: int = 0


def outbox_message(subject: str, payload: BaseModel, msg_id: str, *, jetstream: bool = True) -> OutboxMessage:
    """A row to ``session.add`` inside the transaction that makes the change."""
    return OutboxMessage(**outbox_row(subject, payload, msg_id, jetstream=jetstream))


def log_entry_message(entry: LogEntry) -> OutboxMessage:
    """The outbox row that hands a transparency-log entry to the ledger."""
    return OutboxMessage(**log_entry_row(entry))


def log_entry_row(entry: LogEntry) -> dict[str, Any]:
    """:func:`log_entry_message` as the column values of a Core ``INSERT`` (the send path inserts
    batches of them; building ORM objects for them cost more than the insert)."""
    return outbox_row(Subject.LEDGER_ENTRY.format(kind=entry.kind), entry, f"{entry.kind}:{entry.id}")


def outbox_row(subject: str, payload: BaseModel, msg_id: str, *, jetstream: bool = True) -> dict[str, Any]:
    """The column values of an outbox row (``id`` comes from the database)."""
    return {
        "subject": subject, "msg_id": msg_id, "jetstream": jetstream,
        "payload": payload.model_dump_json().encode(), "created_at": datetime.now(UTC),
        "published_at": None, "attempts": 0,
    }  # fmt: skip


async def ensure_ledger_stream(bus: Bus) -> None:
    """Create the LEDGER stream if missing (every publisher may be first to start), with the
    deployment's replica count (``NATS_STREAM_REPLICAS``)."""
    await bus.ensure_stream(LEDGER_STREAM_CONFIG)


class OutboxRelay:
    """Publishes outbox rows in order; wake it after a commit for low latency."""

    def __init__(self, db: Database, bus: Bus, service: str, *, batch: int = 200) -> None:
        self.db = db
        self.bus = bus
        self.service = service
        self.batch = batch
        self._wake = asyncio.Event()
        self._next_prune = 0.0

    def wake(self) -> None:
        self._wake.set()

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Relay for the life of the service: at once after ``wake()``, else every second; NATS
        may be down for a while (the rows wait, retried with back-off)."""
        await supervise(f"{self.service}-outbox-relay", self.step, backoff=Backoff(0.2, 5.0),
                        wake=self._wake, stop=stop)  # fmt: skip

    async def step(self) -> float:
        """Publish what is pending (pruning old rows once an hour); rest 1 s when nothing was."""
        if time.monotonic() >= self._next_prune:
            await self.prune()
            self._next_prune = time.monotonic() + 3600
        return 0.0 if await self.publish_pending() else 1.0

    async def prune(self, keep: timedelta = timedelta(days=1)) -> int:
        """Delete rows published longer ago than ``keep`` (JetStream dedupes within 10 minutes)."""
        cutoff = datetime.now(UTC) - keep
        async with self.db.session() as session:
            result = await session.exec(
                delete(OutboxMessage).where(col(OutboxMessage.published_at) < cutoff)  # type: ignore[call-overload]
            )
            await session.commit()
        return int(result.rowcount or 0)

    async def publish_pending(self) -> int:
        """Publish up to ``batch`` unpublished rows, all in flight at once, then mark them.

        Consecutive log entries of one kind go out as one message (``coalesce``). The JetStream
        publishes of a round go out back to back and their acks are awaited together (one round
        trip per round, not per row); a row is marked only once the ack of the message carrying it
        came back, and a failed one stays for the next round (the stream dedupes by
        ``Nats-Msg-Id``, the ledger by entry)."""
        table = OutboxMessage.__table__  # type: ignore[attr-defined]
        async with self.db.engine.connect() as conn:
            query = (
                select(table.c.id, table.c.subject, table.c.msg_id, table.c.jetstream, table.c.payload)
                .where(table.c.published_at.is_(None))
                .order_by(table.c.id)
                .limit(self.batch)
            )
            if not self.db.is_sqlite:
                # several instances share one database: each row is relayed by one of them
                query = query.with_for_update(skip_locked=True)
            rows = (await conn.execute(query)).all()
            if not rows:
                OUTBOX_BACKLOG.labels(self.service).set(0)
                return 0
            outgoing = coalesce(rows)
            outcomes = await asyncio.gather(*(self._publish(out) for out in outgoing), return_exceptions=True)
            sent = [out for out, result in zip(outgoing, outcomes, strict=True) if result is None]
            done = [row_id for out in sent for row_id in out.row_ids]
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            retry = sorted({row.id for row in rows} - set(done))
            # SQLite: this process's writers queue for the write lock instead of sleeping in SQLite's
            # busy handler, from the first UPDATE to the commit (the SELECT above took no lock).
            # The gate is taken here with a connection held; every other holder takes the gate
            # first and never waits for this relay, so the two cannot wait on each other.
            async with self.db.write_gate:
                if done:
                    await conn.execute(
                        update(table)
                        .where(table.c.id.in_(done))
                        .values(attempts=table.c.attempts + 1, published_at=datetime.now(UTC))
                    )
                if retry:
                    await conn.execute(
                        update(table).where(table.c.id.in_(retry)).values(attempts=table.c.attempts + 1)
                    )
                await conn.commit()
        OUTBOX_PUBLISHED.labels(self.service).inc(len(done))
        if failed:
            raise failed[0]
        if len(rows) < self.batch:
            OUTBOX_BACKLOG.labels(self.service).set(0)  # rows committed meanwhile show next round
        else:
            async with self.db.engine.connect() as conn:
                count = select(func.count()).select_from(table).where(table.c.published_at.is_(None))
                OUTBOX_BACKLOG.labels(self.service).set((await conn.execute(count)).scalar_one())
        return len(rows)

    async def _publish(self, out: Outgoing) -> None:
        if out.jetstream:
            headers = {"Nats-Msg-Id": out.msg_id}
            await self.bus.js.publish(out.subject, out.payload, timeout=5, headers=headers)
        else:
            await self.bus.nc.publish(out.subject, out.payload)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish, and the outbox rows it carries."""

    subject: str
    msg_id: str
    jetstream: bool
    payload: bytes
    row_ids: tuple[int, ...]


def coalesce(rows: Sequence[Any]) -> list[Outgoing]:
    """The messages for a round of rows, in row order: each run of consecutive log-entry rows of
    one kind (other rows between them do not break it: they go to other streams, and log entries
    keep their order among themselves) becomes one message of up to ``MAX_ENTRIES_PER_MESSAGE``.

    A batch's ``Nats-Msg-Id`` is derived from its entries' ids: the same rows published again make
    the same message, which the stream drops; rows grouped differently on a retry make another
    message, whose entries the ledger finds in the log already (idempotent by kind and id)."""
    groups: list[list[Any]] = []
    run: list[Any] | None = None
    for row in rows:
        if not (row.jetstream and row.subject in _LOG_ENTRY_SUBJECTS):
            groups.append([row])
        elif run is not None and run[0].subject == row.subject and len(run) < MAX_ENTRIES_PER_MESSAGE:
            run.append(row)
        else:
            run = [row]
            groups.append(run)
    return [_message(group) for group in groups]


def _message(group: list[Any]) -> Outgoing:
    first = group[0]
    if len(group) == 1:  # exactly what a lone row always was
        return Outgoing(first.subject, first.msg_id, first.jetstream, first.payload, (first.id,))
    digest = hashlib.sha256("\n".join(row.msg_id for row in group).encode()).hexdigest()
    payload = b"[" + b",".join(row.payload for row in group) + b"]"
    ids = tuple(row.id for row in group)
    return Outgoing(first.subject, f"entries:{len(group)}:{digest}", True, payload, ids)
