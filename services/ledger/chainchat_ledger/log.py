"""The append-only transparency log: leaves in SQL, the RFC 9162 tree in memory and in SQL.

Appends are idempotent by ``(kind, id)`` and atomic per batch: the leaf rows, the changed node
chunks and the new tree size commit in one transaction, and the tree size moves with a
compare-and-set (``UPDATE ... WHERE tree_size = <size we extended>``). A second writer — another
instance answering ``ledger.append.v1`` — therefore can never extend the same tree: the loser of the
race rolls back its in-memory append, catches up from the database and tries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_ledger import metrics
from chainchat_ledger.models import LeafRecord, TreeState
from chainchat_ledger.tree_store import ChunkedNodeStore, load_nodes, save_dirty_nodes
from chainchat_protocol.errors import Unavailable
from chainchat_protocol.ledger import LedgerErrorCode
from chainchat_protocol.log_entry import LogEntry, leaf_hash
from chainchat_protocol.merkle import EMPTY_ROOT, MerkleTree
from chainchat_service.db import Database, utcnow
from chainchat_service.logging import get_logger

log = get_logger(__name__)

APPEND_ATTEMPTS = 5


class StaleTree(Exception):
    """Another writer committed first; catch up and retry."""


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    """Where an entry ended up. ``duplicate``: it was in the log already (or earlier in the same
    batch). ``conflict``: an entry with the same kind and id but another digest is in the log, and
    this one was NOT appended."""

    entry: LogEntry
    leaf_index: int
    duplicate: bool = False
    conflict: bool = False


def leaf_record_to_entry(row: LeafRecord) -> LogEntry:
    return LogEntry.model_validate({"kind": row.kind, "id": row.entry_id, "digest": row.digest, "at": row.at})


class TransparencyLog:
    """The log of one ledger instance; every instance can read, appends are serialised."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.store = ChunkedNodeStore()
        self.tree = MerkleTree(self.store)
        # the size whose leaves and nodes are committed; proofs never look past it
        self.committed_size = 0
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Create the state row on first start and load the stored tree (no re-hashing)."""
        async with self.db.session() as session:
            if await session.get(TreeState, 1) is None:
                session.add(TreeState(id=1, tree_size=0, root_hash=EMPTY_ROOT.hex()))
                try:
                    await session.commit()
                except IntegrityError:  # another instance created it at the same moment
                    await session.rollback()
        await self.sync()
        log.info("tree_loaded", tree_size=self.committed_size, bytes=self.store.nbytes())

    async def sync(self) -> int:
        """Catch up with appends another instance committed; return the committed size."""
        async with self.db.session() as session:
            stored = await _stored_size(session)
        if stored == self.committed_size:
            # nothing new (an append of ours may be in flight: readers never wait for it)
            return stored
        async with self._lock, self.db.session() as session:
            await self._catch_up(session, await _stored_size(session))
        return self.committed_size

    async def _catch_up(self, session: AsyncSession, stored: int) -> None:
        if stored == self.committed_size and self.tree.size == stored:
            return
        if stored < self.committed_size:  # only after a restore from backup: start over
            log.warning("tree_shrank_in_database", memory=self.committed_size, stored=stored)
            self.store = ChunkedNodeStore()
        await load_nodes(session, self.store, stored)
        self.tree = MerkleTree(self.store)
        self.committed_size = stored
        metrics.TREE_SIZE.set(stored)

    def root(self, tree_size: int | None = None) -> bytes:
        """Root of the committed tree (or of an earlier size)."""
        return self.tree.root(self.committed_size if tree_size is None else tree_size)

    async def append(self, entries: Sequence[LogEntry]) -> list[AppendOutcome]:
        """Append the entries not yet in the log, in order, in one transaction."""
        async with self._lock:
            for attempt in range(1, APPEND_ATTEMPTS + 1):
                try:
                    return await self._append_once(entries)
                except (StaleTree, IntegrityError) as exc:
                    metrics.APPEND_RETRIES.inc()
                    log.info("append_raced", attempt=attempt, reason=type(exc).__name__)
                    await asyncio.sleep(0.01 * attempt)
        raise Unavailable("the log is busy; retry", code=LedgerErrorCode.LEDGER_BUSY)

    async def _append_once(self, entries: Sequence[LogEntry]) -> list[AppendOutcome]:
        async with self.db.session() as session:
            size = await _stored_size(session)
            await self._catch_up(session, size)
            existing = await _existing_leaves(session, entries)
            outcomes, fresh = _classify(entries, existing, size)
            if not fresh:
                return outcomes
            snapshot = self.store.counts()
            try:
                hashes = [leaf_hash(e) for e in fresh]
                self.tree.extend_hashes(hashes)
                await _insert_leaves(session, fresh, hashes, size)
                await save_dirty_nodes(session, self.store)
                await _advance_size(session, size, self.tree.size, self.tree.root())
                await session.commit()
            except BaseException:
                # the transaction did not commit: drop the in-memory nodes it added
                self.store.truncate(snapshot)
                self.tree = MerkleTree(self.store)
                raise
        self.committed_size = self.tree.size
        metrics.TREE_SIZE.set(self.committed_size)
        metrics.LEAVES_APPENDED.inc(len(fresh))
        return outcomes

    async def leaf(self, kind: str, entry_id: str) -> LeafRecord | None:
        async with self.db.session() as session:
            result = await session.exec(
                select(LeafRecord).where(LeafRecord.kind == kind, LeafRecord.entry_id == entry_id)
            )
            return result.first()

    async def leaves(self, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LeafRecord]:
        """Several leaves by ``(kind, id)`` in one query."""
        async with self.db.session() as session:
            ids = sorted({i for _, i in refs})
            rows = await session.exec(select(LeafRecord).where(col(LeafRecord.entry_id).in_(ids)))
            wanted = set(refs)
            return {(r.kind, r.entry_id): r for r in rows.all() if (r.kind, r.entry_id) in wanted}

    async def ids_between(self, start: int, end: int) -> dict[str, list[str]]:
        """Entry ids of leaves ``[start, end)`` grouped by kind, in log order."""
        grouped: dict[str, list[str]] = {}
        async with self.db.session() as session:
            rows = await session.exec(
                select(LeafRecord.kind, LeafRecord.entry_id)
                .where(col(LeafRecord.leaf_index) >= start, col(LeafRecord.leaf_index) < end)
                .order_by(col(LeafRecord.leaf_index))
            )
            for kind, entry_id in rows.all():
                grouped.setdefault(kind, []).append(entry_id)
        return grouped


async def _stored_size(session: AsyncSession) -> int:
    result = await session.exec(select(TreeState.tree_size).where(TreeState.id == 1))
    return int(result.one())


async def _existing_leaves(
    session: AsyncSession, entries: Sequence[LogEntry]
) -> dict[tuple[str, str], LeafRecord]:
    ids = sorted({e.id for e in entries})
    rows = await session.exec(select(LeafRecord).where(col(LeafRecord.entry_id).in_(ids)))
    return {(r.kind, r.entry_id): r for r in rows.all()}


def _classify(
    entries: Sequence[LogEntry], existing: dict[tuple[str, str], LeafRecord], size: int
) -> tuple[list[AppendOutcome], list[LogEntry]]:
    """Split a batch into outcomes for every entry and the entries to append, in order."""
    outcomes: list[AppendOutcome] = []
    fresh: list[LogEntry] = []
    seen: dict[tuple[str, str], tuple[int, str]] = {
        key: (row.leaf_index, row.digest) for key, row in existing.items()
    }
    for entry in entries:
        key = (entry.kind, entry.id)
        if key in seen:
            index, digest = seen[key]
            outcomes.append(AppendOutcome(entry, index, duplicate=True, conflict=digest != entry.digest))
            continue
        index = size + len(fresh)
        seen[key] = (index, entry.digest)
        fresh.append(entry)
        outcomes.append(AppendOutcome(entry, index))
    return outcomes, fresh


async def _insert_leaves(
    session: AsyncSession, fresh: Sequence[LogEntry], hashes: Sequence[bytes], first: int
) -> None:
    # a Core executemany: the ORM's bulk insert path cost more than the insert itself
    now = utcnow()
    conn = await session.connection()
    await conn.execute(
        LeafRecord.__table__.insert(),
        [
            {"leaf_index": first + i, "kind": e.kind, "entry_id": e.id, "digest": e.digest, "at": e.at,
             "leaf_hash": h, "appended_at": now}
            for i, (e, h) in enumerate(zip(fresh, hashes, strict=True))
        ],
    )  # fmt: skip


async def _advance_size(session: AsyncSession, old: int, new: int, root: bytes) -> None:
    result = await session.exec(
        update(TreeState)
        .where(col(TreeState.id) == 1, col(TreeState.tree_size) == old)
        .values(tree_size=new, root_hash=root.hex(), updated_at=utcnow())
    )
    if result.rowcount != 1:
        raise StaleTree(f"tree size moved from {old} while appending")
