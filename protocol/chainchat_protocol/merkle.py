"""RFC 9162 (Certificate Transparency v2) Merkle tree over SHA-256: hashing, an append-only tree
backed by stored perfect-subtree hashes, proof generation (§2.1.3.1, §2.1.4.1) and proof
verification exactly as §2.1.3.2 and §2.1.4.2 describe it.

Storage model. Node ``(level, index)`` is the root of the *perfect* subtree covering leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. Such a node never
changes once its last leaf exists, so it is written exactly once, and every level only grows at
its end. Any tree head — the current one or any historical ``tree_size`` — decomposes into at most
``log2(n)`` perfect subtrees ("peaks"), so roots and proofs need O(log n) stored nodes and never a
re-computation of the tree. The store is a small protocol (:class:`NodeStore`) so the ledger can
keep the nodes in SQL; :class:`MemoryNodeStore` keeps one ``bytearray`` per level.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryNodeStore",
    "MerkleTree",
    "NodeStore",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || leaf)."""
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash of a list of leaf hashes, straight from the RFC 9162 §2.1.1 recursion.

    Reference implementation (O(n)): used by tests and for small in-memory lists.
    """
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(merkle_root(leaf_hashes[:k]), merkle_root(leaf_hashes[k:]))


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _peaks(size: int) -> list[tuple[int, int]]:
    """Perfect subtrees ``(level, index)`` composing a tree of ``size`` leaves, left to right."""
    peaks: list[tuple[int, int]] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            peaks.append((level, start >> level))
            start += 1 << level
    return peaks


# --------------------------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2 and §2.1.4.2, step by step)
# --------------------------------------------------------------------------------------------


def _well_formed(hashes: Iterable[object]) -> bool:
    return all(isinstance(h, bytes | bytearray) and len(h) == HASH_SIZE for h in hashes)


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes | None:
    """Run the RFC 9162 §2.1.3.2 algorithm and return the root it computes, or None if invalid."""
    if not (0 <= leaf_index < tree_size) or not _well_formed([leaf, *proof]):
        return None
    fn, sn, r = leaf_index, tree_size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """True iff ``proof`` proves that leaf hash ``leaf`` is at ``leaf_index`` in the tree of
    ``tree_size`` leaves whose root is ``root`` (RFC 9162 §2.1.3.2). Never raises on bad input."""
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf, proof)
    return computed is not None and computed == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """True iff ``proof`` proves the tree of ``second`` leaves extends the tree of ``first`` leaves
    (RFC 9162 §2.1.4.2). Never raises on bad input.

    Edge cases the RFC leaves to the caller: equal sizes are consistent only with equal roots and
    an empty proof; the empty tree (``first == 0``) is a prefix of every tree, with an empty proof.
    """
    if not (0 <= first <= second) or not _well_formed([first_root, second_root, *proof]):
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:  # step 1
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # step 2: first is an exact power of two
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root  # step 7


# --------------------------------------------------------------------------------------------
# Node storage
# --------------------------------------------------------------------------------------------


class NodeStore(Protocol):
    """Where the perfect-subtree hashes live. Each level is append-only: nodes are written once,
    in index order, so a SQL implementation can use ``(level, index)`` as primary key and
    ``executemany`` for :meth:`put_many`."""

    def get(self, level: int, index: int) -> bytes:
        """Return node ``(level, index)``; raise ``KeyError`` if it was never written."""
        ...

    def put_many(self, level: int, start: int, hashes: Sequence[bytes]) -> None:
        """Write ``hashes`` as nodes ``(level, start), (level, start + 1), ...``."""
        ...

    def count(self, level: int) -> int:
        """Number of nodes stored at ``level`` (``count(0)`` is the number of leaves)."""
        ...


class MemoryNodeStore:
    """In-memory :class:`NodeStore`: one contiguous ``bytearray`` per level (32 bytes per node),
    about 64 bytes per leaf in total and no per-node Python object."""

    def __init__(self) -> None:
        self._levels: list[bytearray] = []

    def get(self, level: int, index: int) -> bytes:
        """Return node ``(level, index)``."""
        if level >= len(self._levels) or index < 0:
            raise KeyError((level, index))
        off = index * HASH_SIZE
        data = self._levels[level][off : off + HASH_SIZE]
        if len(data) != HASH_SIZE:
            raise KeyError((level, index))
        return bytes(data)

    def put_many(self, level: int, start: int, hashes: Sequence[bytes]) -> None:
        """Append a contiguous run of nodes at ``level`` starting at index ``start``."""
        while len(self._levels) <= level:
            self._levels.append(bytearray())
        buf = self._levels[level]
        if start * HASH_SIZE != len(buf):
            raise ValueError(f"level {level}: expected index {len(buf) // HASH_SIZE}, got {start}")
        buf += b"".join(hashes)

    def count(self, level: int) -> int:
        """Number of nodes stored at ``level``."""
        return len(self._levels[level]) // HASH_SIZE if level < len(self._levels) else 0

    def nbytes(self) -> int:
        """Bytes of hash data held (for capacity planning and benchmarks)."""
        return sum(len(b) for b in self._levels)


# --------------------------------------------------------------------------------------------
# The append-only tree
# --------------------------------------------------------------------------------------------


class MerkleTree:
    """Append-only RFC 9162 tree over a :class:`NodeStore`.

    Appending keeps the right edge (the roots of the perfect subtrees of the current size, the
    "frontier") in memory and writes each completed node once: amortised one node hash per leaf,
    O(log n) worst case. Roots and proofs for any ``tree_size <= size`` read O(log n) nodes.
    """

    def __init__(self, store: NodeStore | None = None) -> None:
        self._store: NodeStore = store if store is not None else MemoryNodeStore()
        self._size = self._store.count(0)
        # Rebuilding the frontier of a reopened store costs O(log n) reads.
        self._frontier: list[bytes] = [self._store.get(lv, ix) for lv, ix in _peaks(self._size)]

    @property
    def size(self) -> int:
        """Number of leaves."""
        return self._size

    @property
    def store(self) -> NodeStore:
        """The node store (for persistence layers)."""
        return self._store

    def append(self, leaf: bytes) -> int:
        """Append raw leaf data (hashed with :func:`leaf_hash`); return its leaf index."""
        return self.extend_hashes([leaf_hash(leaf)])

    def append_hash(self, leaf_hash_value: bytes) -> int:
        """Append an already computed leaf hash; return its leaf index."""
        return self.extend_hashes([leaf_hash_value])

    def extend(self, leaves: Iterable[bytes]) -> int:
        """Append many raw leaves; return the index of the first one."""
        return self.extend_hashes([_sha256(b"\x00" + leaf).digest() for leaf in leaves])

    def extend_hashes(self, hashes: Sequence[bytes]) -> int:
        """Append many leaf hashes with one batched store write per level; return the first index.

        This is the hot path of the ledger, hence the local-variable style.
        """
        if not _well_formed(hashes):
            raise ValueError("leaf hashes must be 32 bytes")
        first = self._size
        size = first
        frontier = self._frontier
        new_nodes: list[list[bytes]] = [list(hashes)]
        sha = _sha256
        for h in hashes:
            level = 0
            while size >> level & 1:  # the subtree at this level is now complete: merge
                h = sha(b"\x01" + frontier.pop() + h).digest()
                level += 1
                if level == len(new_nodes):
                    new_nodes.append([])
                new_nodes[level].append(h)
            frontier.append(h)
            size += 1
        for level, nodes in enumerate(new_nodes):
            if nodes:
                # A tree of n leaves has exactly n >> level complete nodes at each level.
                self._store.put_many(level, first >> level, nodes)
        self._size = size
        return first

    # ----- reading ------------------------------------------------------------------------

    def _check_size(self, tree_size: int | None) -> int:
        n = self._size if tree_size is None else tree_size
        if not 0 <= n <= self._size:
            raise ValueError(f"tree_size {n} outside [0, {self._size}]")
        return n

    def leaf_hash_at(self, index: int) -> bytes:
        """Leaf hash stored at ``index``."""
        if not 0 <= index < self._size:
            raise IndexError(index)
        return self._store.get(0, index)

    def _range_hash(self, start: int, end: int) -> bytes:
        """MTH of leaves ``[start, end)`` where ``start`` is aligned as in the RFC recursion
        (a multiple of the largest power of two not exceeding ``end - start``)."""
        get = self._store.get
        parts: list[bytes] = []
        pos = start
        for level in range((end - start).bit_length() - 1, -1, -1):
            if (end - start) >> level & 1:
                parts.append(get(level, pos >> level))
                pos += 1 << level
        h = parts.pop()
        while parts:
            h = node_hash(parts.pop(), h)
        return h

    def root(self, tree_size: int | None = None) -> bytes:
        """Root hash of the tree at ``tree_size`` leaves (default: current size)."""
        n = self._check_size(tree_size)
        if n == 0:
            return EMPTY_ROOT
        if n == self._size:
            h = self._frontier[-1]
            for peak in reversed(self._frontier[:-1]):
                h = node_hash(peak, h)
            return h
        return self._range_hash(0, n)

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> list[bytes]:
        """Audit path for ``leaf_index`` in the tree of ``tree_size`` leaves (RFC 9162 §2.1.3.1),
        ordered leaf to root as the verification algorithm consumes it."""
        n = self._check_size(tree_size)
        if not 0 <= leaf_index < n:
            raise ValueError(f"leaf_index {leaf_index} outside [0, {n})")
        get = self._store.get
        peaks = _peaks(n)
        # The leaf lies in exactly one peak; inside it the path is the sibling at every level.
        j = next(i for i, (lv, ix) in enumerate(peaks) if leaf_index >> lv == ix)
        level = peaks[j][0]
        proof = [get(lv, (leaf_index >> lv) ^ 1) for lv in range(level)]
        if j + 1 < len(peaks):  # everything right of the peak is one (ragged) subtree
            proof.append(self._range_hash((peaks[j][1] + 1) << level, n))
        proof.extend(get(lv, ix) for lv, ix in reversed(peaks[:j]))
        return proof

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """Consistency proof from the tree of ``first`` leaves to the tree of ``second`` leaves
        (RFC 9162 §2.1.4.1 SUBPROOF, unrolled). Empty when ``first`` is 0 or equals ``second``."""
        n = self._check_size(second)
        if not 0 <= first <= n:
            raise ValueError(f"first {first} outside [0, {n}]")
        if first in (0, n):
            return []
        top_down: list[bytes] = []
        lo, hi, m, complete = 0, n, first, True
        while m != hi - lo:
            k = _split(hi - lo)
            if m <= k:  # old tree lies in the left subtree: the right one is new
                top_down.append(self._range_hash(lo + k, hi))
                hi = lo + k
            else:  # left subtree is shared and perfect; recurse right
                top_down.append(self._store.get(k.bit_length() - 1, lo // k))
                lo, m, complete = lo + k, m - k, False
        if not complete:
            top_down.append(self._range_hash(lo, hi))
        top_down.reverse()
        return top_down
