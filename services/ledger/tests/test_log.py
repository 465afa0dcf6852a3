"""The transparency log on a real SQLite file: idempotent atomic appends, restarts without
re-hashing, two writers on one database, and roots identical to the RFC 9162 reference."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chainchat_ledger.app import MIGRATIONS
from chainchat_ledger.log import TransparencyLog
from chainchat_ledger.models import NODES_PER_CHUNK
from chainchat_protocol import merkle
from chainchat_protocol.log_entry import LogEntry, leaf_hash
from chainchat_service.db import Database
from devstack.databases import fresh_database

AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def entry(i: int, kind: str = "message", digest_seed: str = "") -> LogEntry:
    digest = hashlib.sha256(f"{digest_seed}{i}".encode()).hexdigest()
    return LogEntry.create(kind, f"id-{i}", digest, AT)  # type: ignore[arg-type]


@asynccontextmanager
async def fresh_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty SQLite file, or a new PostgreSQL database dropped afterwards."""
    async with fresh_database(kind, tmp_path, "ledger") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The ledger schema (by its Alembic migrations) on SQLite and on PostgreSQL."""
    async with fresh_url(request.param, tmp_path) as url:
        database = Database(url)
        await database.migrate(MIGRATIONS)
        yield database
        await database.close()


async def open_log(db: Database) -> TransparencyLog:
    tlog = TransparencyLog(db)
    await tlog.open()
    return tlog


def reference_root(entries: list[LogEntry]) -> bytes:
    return merkle.merkle_root([leaf_hash(e) for e in entries])


async def test_append_assigns_indexes_and_matches_reference_root(db: Database) -> None:
    tlog = await open_log(db)
    entries = [entry(i) for i in range(1000)]
    outcomes = await tlog.append(entries[:600])
    assert [o.leaf_index for o in outcomes] == list(range(600))
    await tlog.append(entries[600:])
    assert tlog.committed_size == 1000
    assert tlog.root() == reference_root(entries)
    assert tlog.root(777) == reference_root(entries[:777])


async def test_append_is_idempotent_by_kind_and_id(db: Database) -> None:
    tlog = await open_log(db)
    await tlog.append([entry(i) for i in range(10)])
    again = await tlog.append([entry(3), entry(10), entry(3), entry(11)])
    assert [(o.leaf_index, o.duplicate) for o in again] == [(3, True), (10, False), (3, True), (11, False)]
    assert tlog.committed_size == 12
    # same id, another kind: a different entry
    other = await tlog.append([entry(3, kind="tombstone")])
    assert other[0].leaf_index == 12
    assert not other[0].duplicate


async def test_same_id_other_digest_is_a_conflict_and_not_appended(db: Database) -> None:
    tlog = await open_log(db)
    await tlog.append([entry(1)])
    (outcome,) = await tlog.append([entry(1, digest_seed="forged")])
    assert outcome.conflict
    assert outcome.leaf_index == 0
    assert tlog.committed_size == 1


async def test_restart_loads_stored_nodes_without_rehashing(db: Database, monkeypatch) -> None:
    tlog = await open_log(db)
    entries = [entry(i) for i in range(3 * NODES_PER_CHUNK + 17)]
    for start in range(0, len(entries), 100):  # chunk boundaries fall inside batches
        await tlog.append(entries[start : start + 100])

    def no_hashing(*_args: object) -> bytes:
        raise AssertionError("a restart must not re-hash the tree")

    monkeypatch.setattr(merkle, "node_hash", no_hashing)
    reopened = await open_log(db)
    monkeypatch.undo()
    assert reopened.committed_size == len(entries)
    assert reopened.root() == reference_root(entries)
    for index in (0, 255, 256, 700, len(entries) - 1):
        assert reopened.tree.inclusion_proof(index) == tlog.tree.inclusion_proof(index)


async def test_two_writers_on_one_database_never_fork_the_tree(db: Database) -> None:
    a = await open_log(db)
    b = await open_log(db)
    entries = [entry(i) for i in range(300)]
    await a.append(entries[:100])
    # b is stale (size 0): its compare-and-set fails, it catches up and appends after a's leaves
    out = await b.append(entries[50:150])
    assert [o.leaf_index for o in out[:50]] == list(range(50, 100))
    assert [o.leaf_index for o in out[50:]] == list(range(100, 150))
    await a.append(entries[150:])
    await b.sync()
    assert a.root() == b.root() == reference_root(entries)


async def test_failed_transaction_rolls_the_memory_tree_back(db: Database, monkeypatch) -> None:
    tlog = await open_log(db)
    await tlog.append([entry(i) for i in range(5)])
    root = tlog.root()

    async def broken(*_args: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr("chainchat_ledger.log.save_dirty_nodes", broken)
    with pytest.raises(RuntimeError):
        await tlog.append([entry(i) for i in range(5, 9)])
    monkeypatch.undo()
    assert tlog.tree.size == tlog.committed_size == 5
    assert tlog.root() == root
    await tlog.append([entry(i) for i in range(5, 9)])
    assert tlog.root() == reference_root([entry(i) for i in range(9)])


async def test_ids_between_groups_by_kind_in_log_order(db: Database) -> None:
    tlog = await open_log(db)
    await tlog.append([entry(0), entry(1, kind="file"), entry(2), entry(3, kind="audit")])
    assert await tlog.ids_between(1, 4) == {"file": ["id-1"], "message": ["id-2"], "audit": ["id-3"]}
