"""The Merkle tree's nodes: in memory for proofs, persisted in chunks for restarts.

:class:`ChunkedNodeStore` implements the protocol package's ``NodeStore`` (so the one RFC 9162
implementation, ``chainchat_protocol.merkle.MerkleTree``, does all hashing and proof building)
and remembers which chunks changed, so an append transaction writes only those. A restart reads
the stored perfect-subtree hashes back — no leaf is re-hashed — and a second instance catches up
by reading only the chunks past what it already holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import tuple_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_ledger.models import NODES_PER_CHUNK, NodeChunk
from chainchat_protocol.merkle import HASH_SIZE

CHUNK_BYTES = NODES_PER_CHUNK * HASH_SIZE


class ChunkedNodeStore:
    """A ``NodeStore``: one ``bytearray`` per level plus the set of chunks changed since the last
    :meth:`take_dirty`."""

    def __init__(self) -> None:
        self._levels: list[bytearray] = []
        self._dirty: set[tuple[int, int]] = set()

    # --- NodeStore ---------------------------------------------------------------------------

    def get(self, level: int, index: int) -> bytes:
        if level >= len(self._levels) or index < 0:
            raise KeyError((level, index))
        off = index * HASH_SIZE
        data = self._levels[level][off : off + HASH_SIZE]
        if len(data) != HASH_SIZE:
            raise KeyError((level, index))
        return bytes(data)

    def put_many(self, level: int, start: int, hashes: Sequence[bytes]) -> None:
        if not hashes:
            return
        while len(self._levels) <= level:
            self._levels.append(bytearray())
        buf = self._levels[level]
        if start * HASH_SIZE != len(buf):
            raise ValueError(f"level {level}: expected index {len(buf) // HASH_SIZE}, got {start}")
        buf += b"".join(hashes)
        last = start + len(hashes) - 1
        self._dirty.update((level, c) for c in range(start // NODES_PER_CHUNK, last // NODES_PER_CHUNK + 1))

    def count(self, level: int) -> int:
        return len(self._levels[level]) // HASH_SIZE if level < len(self._levels) else 0

    # --- persistence helpers -------------------------------------------------------------------

    def counts(self) -> list[int]:
        """Nodes per level (a snapshot for :meth:`truncate`)."""
        return [len(buf) // HASH_SIZE for buf in self._levels]

    def truncate(self, counts: Sequence[int]) -> None:
        """Forget nodes beyond ``counts`` (undo an append whose transaction did not commit)."""
        del self._levels[len(counts) :]
        for level, n in enumerate(counts):
            del self._levels[level][n * HASH_SIZE :]
        self._dirty.clear()

    def take_dirty(self) -> list[tuple[int, int, bytes]]:
        """The changed chunks as ``(level, chunk, bytes)`` rows; clears the dirty set."""
        rows = []
        for level, chunk in sorted(self._dirty):
            off = chunk * CHUNK_BYTES
            rows.append((level, chunk, bytes(self._levels[level][off : off + CHUNK_BYTES])))
        self._dirty.clear()
        return rows

    def load_chunk(self, level: int, chunk: int, data: bytes) -> None:
        """Place a stored chunk; chunks arrive in order and may overlap what is held already."""
        while len(self._levels) <= level:
            self._levels.append(bytearray())
        buf = self._levels[level]
        off = chunk * CHUNK_BYTES
        if off > len(buf):
            raise ValueError(f"level {level}: chunk {chunk} leaves a gap after {len(buf)} bytes")
        buf[off:] = data

    def clip_to_size(self, tree_size: int) -> None:
        """Keep exactly the ``tree_size >> level`` complete nodes per level of that tree size."""
        for level, buf in enumerate(self._levels):
            del buf[(tree_size >> level) * HASH_SIZE :]
        while self._levels and not self._levels[-1]:
            self._levels.pop()

    def nbytes(self) -> int:
        return sum(len(b) for b in self._levels)


async def load_nodes(session: AsyncSession, store: ChunkedNodeStore, tree_size: int) -> None:
    """Bring ``store`` up to ``tree_size`` leaves from the stored chunks, reading only chunks at or
    after the first one that is not complete in memory."""
    levels = tree_size.bit_length()
    for level in range(levels):
        first = store.count(level) // NODES_PER_CHUNK
        rows = await session.exec(
            select(NodeChunk.chunk, NodeChunk.data)
            .where(NodeChunk.level == level, col(NodeChunk.chunk) >= first)
            .order_by(col(NodeChunk.chunk))
        )
        for chunk, data in rows.all():
            store.load_chunk(level, chunk, data)
    # chunks may be newer than the tree_size read before them (another writer committed since):
    # nodes never change, so cutting back to exactly tree_size gives a consistent tree
    store.clip_to_size(tree_size)


async def save_dirty_nodes(session: AsyncSession, store: ChunkedNodeStore) -> int:
    """Write the chunks changed by the appends of this transaction: one delete and one insert
    (portable across SQLite and PostgreSQL; the rows are few, about one per level, but a
    statement per level was the largest part of an append's time)."""
    rows = store.take_dirty()
    if not rows:
        return 0
    table = NodeChunk.__table__
    conn = await session.connection()
    keys = tuple_(table.c.level, table.c.chunk)
    await conn.execute(table.delete().where(keys.in_([(level, chunk) for level, chunk, _ in rows])))
    await conn.execute(table.insert(), [{"level": lv, "chunk": ch, "data": data} for lv, ch, data in rows])
    return len(rows)
