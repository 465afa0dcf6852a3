"""Transactional outbox: events written in the same transaction as the state change, then relayed.

A crash between commit and publish loses nothing: the relay publishes every row not yet marked,
to JetStream with ``Nats-Msg-Id`` (the stream drops duplicates inside its window and the ledger
appends idempotently by entry id beyond it), or to core NATS for best-effort deliveries.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from prometheus_client import Counter, Gauge
from pydantic import BaseModel
from sqlalchemy import LargeBinary, delete, func, update
from sqlmodel import Column, Field, SQLModel, col, select

from chainchat_protocol.log_entry import LogEntry
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

        The JetStream publishes of a batch go out back to back and their acks are awaited together
        (one round trip per batch, not per row); a row is marked only once its own ack came back,
        and a failed one stays for the next round (the stream dedupes by ``Nats-Msg-Id``)."""
        table = OutboxMessage.__table__  # type: ignore[attr-defined]
        async with self.db.engine.begin() as conn:
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
            outcomes = await asyncio.gather(*(self._publish(row) for row in rows), return_exceptions=True)
            done = [row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
            failed = [o for o in outcomes if isinstance(o, BaseException)]
            await conn.execute(
                update(table)
                .where(table.c.id.in_([row.id for row in rows]))
                .values(attempts=table.c.attempts + 1)
            )
            if done:
                await conn.execute(
                    update(table).where(table.c.id.in_(done)).values(published_at=datetime.now(UTC))
                )
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

    async def _publish(self, row: Any) -> None:
        if row.jetstream:
            headers = {"Nats-Msg-Id": row.msg_id}
            await self.bus.js.publish(row.subject, row.payload, timeout=5, headers=headers)
        else:
            await self.bus.nc.publish(row.subject, row.payload)
