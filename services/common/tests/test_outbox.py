"""The outbox relay publishes committed rows once, in order, and prunes old published rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
from pydantic import BaseModel
from sqlmodel import SQLModel, select

from chainchat_service.bus import Bus
from chainchat_service.db import Database
from chainchat_service.outbox import OutboxMessage, OutboxRelay, outbox_message
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
