"""The outbox relay publishes committed rows once, in order (log entries of one kind batched into
one stream message), and prunes old published rows."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import nats
from pydantic import BaseModel
from sqlalchemy import update
from sqlmodel import SQLModel, select

from chainchat_protocol.log_entry import LogEntry
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.db import Database
from chainchat_service.outbox import (
    MAX_ENTRIES_PER_MESSAGE,
    OutboxMessage,
    OutboxRelay,
    coalesce,
    ensure_ledger_stream,
    log_entry_message,
    log_entry_row,
    outbox_message,
)
from devstack.components import NatsServer


class Ping(BaseModel):
    n: int


async def test_relay_publishes_in_order_and_prunes(tmp_path: Path, nats_server: NatsServer) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all, tables=[OutboxMessage.__table__])  # type: ignore[attr-defined]
    subject = f"test.outbox.{uuid.uuid4().hex}"
    listener = await nats.connect(nats_server.client_url())
    sub = await listener.subscribe(subject)
    bus = Bus(nats_server.client_url(), "outbox-test")
    await bus.connect()
    try:
        async with db.session() as session:
            for n in range(3):
                session.add(outbox_message(subject, Ping(n=n), msg_id=f"m{n}", jetstream=False))
            await session.commit()
        relay = OutboxRelay(db, bus, "test")
        assert await relay.publish_pending() == 3
        assert await relay.publish_pending() == 0  # nothing twice
        got = [Ping.model_validate_json((await sub.next_msg(timeout=2)).data).n for _ in range(3)]
        assert got == [0, 1, 2]
        async with db.session() as session:
            row = (await session.exec(select(OutboxMessage).where(OutboxMessage.msg_id == "m0"))).one()
            row.published_at = datetime.now(UTC) - timedelta(days=2)
            session.add(row)
            await session.commit()
        assert await relay.prune() == 1
        async with db.session() as session:
            assert len((await session.exec(select(OutboxMessage))).all()) == 2
    finally:
        await listener.close()
        await bus.close()
        await db.close()


def entry(kind: str, entry_id: str) -> LogEntry:
    return LogEntry.create(kind, entry_id, hashlib.sha256(entry_id.encode()).hexdigest())  # type: ignore[arg-type]


def test_consecutive_log_entries_of_a_kind_become_one_message() -> None:
    count = MAX_ENTRIES_PER_MESSAGE + 3
    rows = [SimpleNamespace(id=n, **outbox_row_of(entry("message", f"m{n}"))) for n in range(count)]
    other = SimpleNamespace(id=1000, subject="chat.message.posted.v1", msg_id="posted:m", jetstream=True,
                            payload=b"{}")  # fmt: skip
    tomb = SimpleNamespace(id=1001, **outbox_row_of(entry("tombstone", "t0")))
    last = SimpleNamespace(id=1002, **outbox_row_of(entry("message", "m-last")))
    out = coalesce([*rows[:2], other, *rows[2:], tomb, last])
    assert [(o.subject, len(o.row_ids)) for o in out] == [
        ("ledger.entry.message.v1", MAX_ENTRIES_PER_MESSAGE),
        ("chat.message.posted.v1", 1),
        ("ledger.entry.message.v1", 3),
        ("ledger.entry.tombstone.v1", 1),
        ("ledger.entry.message.v1", 1),
    ]
    batch = [LogEntry.model_validate(item) for item in json.loads(out[0].payload)]
    assert [e.id for e in batch] == [f"m{n}" for n in range(MAX_ENTRIES_PER_MESSAGE)]
    assert out[0].msg_id.startswith(f"entries:{MAX_ENTRIES_PER_MESSAGE}:")
    assert coalesce(rows[:MAX_ENTRIES_PER_MESSAGE])[0].msg_id == out[0].msg_id  # a retry: same id
    assert (out[3].msg_id, out[3].payload) == (tomb.msg_id, tomb.payload)  # a lone entry: as ever


def outbox_row_of(e: LogEntry) -> dict[str, object]:
    row = log_entry_row(e)
    return {k: row[k] for k in ("subject", "msg_id", "jetstream", "payload")}


async def test_relay_publishes_batched_entries_to_the_ledger_stream(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'o.db'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(SQLModel.metadata.create_all, tables=[OutboxMessage.__table__])
    prefix = uuid.uuid4().hex[:8]
    bus = Bus(nats_server.client_url(), "outbox-test")
    await bus.connect()
    listener = await nats.connect(nats_server.client_url())
    sub = await listener.subscribe(Subject.LEDGER_ENTRY_ALL)
    try:
        await ensure_ledger_stream(bus)
        async with db.session() as session:
            for i in range(5):
                session.add(log_entry_message(entry("message", f"{prefix}-{i}")))
            session.add(log_entry_message(entry("tombstone", f"{prefix}-0")))
            await session.commit()
        relay = OutboxRelay(db, bus, "test")
        assert await relay.publish_pending() == 6
        assert await relay.publish_pending() == 0
        got = [await sub.next_msg(timeout=2) for _ in range(2)]
        assert [m.subject for m in got] == ["ledger.entry.message.v1", "ledger.entry.tombstone.v1"]
        assert [e["id"] for e in json.loads(got[0].data)] == [f"{prefix}-{i}" for i in range(5)]
        assert json.loads(got[1].data)["id"] == f"{prefix}-0"
        # published again (a lost ack): the same message id, which the stream drops
        async with db.engine.begin() as conn:
            await conn.execute(update(OutboxMessage).values(published_at=None))
        assert await relay.publish_pending() == 6
        ack = await bus.js.publish(got[0].subject, got[0].data, headers=dict(got[0].headers or {}))
        assert ack.duplicate
    finally:
        await listener.close()
        await bus.close()
        await db.close()
