"""``Database.write_transaction``: one transaction on a synchronous connection, committed whole or
rolled back whole, on SQLite (a worker thread) and PostgreSQL (``run_sync``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.engine import Connection

from chainchat_service.db import Database
from devstack.databases import fresh_database

_metadata = MetaData()
_rows = Table("rows", _metadata, Column("n", Integer, primary_key=True))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database(request.param, tmp_path, "common") as url:
        db = Database(url)
        async with db.engine.begin() as conn:
            await conn.run_sync(_metadata.create_all)
        yield db
        await db.close()


def _stored(conn: Connection) -> list[int]:
    return list(conn.execute(select(_rows.c.n).order_by(_rows.c.n)).scalars())


async def test_a_write_transaction_commits_whole_or_not_at_all(db: Database) -> None:
    def write(conn: Connection) -> int:
        conn.execute(insert(_rows), [{"n": 1}, {"n": 2}])
        return len(_stored(conn))

    assert await db.write_transaction(write) == 2  # its own writes are visible inside it

    def fail_halfway(conn: Connection) -> None:
        conn.execute(insert(_rows), [{"n": 3}])
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await db.write_transaction(fail_halfway)
    assert await db.write_transaction(_stored) == [1, 2]  # nothing of the failed one is left
    async with db.engine.connect() as conn:  # and the async engine sees the same rows
        assert list((await conn.execute(select(_rows.c.n).order_by(_rows.c.n))).scalars()) == [1, 2]
