"""Fork detection: a client keeps the largest tree head it verified and checks every other head it
is shown against it with an RFC 9162 consistency proof (SPEC §11 "Pinned ledger").

A log that only ever appends has one history: any two heads are consistent. A server that shows
one user a head and another user (or the same user, later) a head that does not extend it has
forked its log — rewritten or dropped entries — and is reported, loudly, never trusted.

    tracker = HeadTracker(store)            # store: a dict persisted with the profile
    await tracker.observe(client, TreeHead(tree_size, root_hash))   # raises LogForked
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from chainchat.client import ApiError
from chainchat_protocol.proof import ConsistencyProof, verify_consistency_offline

__all__ = ["HeadTracker", "LogForked", "TreeHead", "check_consistent"]


class LogForked(Exception):
    """Two tree heads of the log do not belong to one append-only history."""

    code = "log_forked"

    def __init__(self, detail: str) -> None:
        super().__init__(f"the server's log forked: {detail}")
        self.message = str(self)


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: str
    head_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tree_size": self.tree_size, "root_hash": self.root_hash, "head_index": self.head_index}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TreeHead:
        index = data.get("head_index")
        return cls(int(data["tree_size"]), str(data["root_hash"]), None if index is None else int(index))


class ConsistencySource(Protocol):
    """Where consistency proofs come from: :class:`chainchat.client.Client` (``GET /ledger/consistency``)."""

    async def consistency(self, from_size: int, to_size: int) -> ConsistencyProof: ...


async def check_consistent(source: ConsistencySource, old: TreeHead, new: TreeHead) -> None:
    """Raise :class:`LogForked` unless ``old`` and ``new`` are heads of one append-only log.

    Equal sizes need equal roots; otherwise the smaller head must be a prefix of the larger one,
    proven by ``GET /ledger/consistency`` and checked here (RFC 9162 §2.1.4.2). Transport errors
    from ``source`` propagate (nothing is decided, nothing is trusted).
    """
    if old.tree_size == new.tree_size:
        if old.root_hash != new.root_hash:
            raise LogForked(f"two different roots for tree size {old.tree_size}")
        return
    small, large = (old, new) if old.tree_size < new.tree_size else (new, old)
    try:
        proof = await source.consistency(small.tree_size, large.tree_size)
    except ApiError as exc:
        if exc.code == "bad_response":  # the server answered, with something that is not a proof
            raise LogForked("the consistency proof it served is malformed") from None
        raise
    if (proof.from_size, proof.to_size) != (small.tree_size, large.tree_size):
        raise LogForked(f"asked for sizes {small.tree_size}→{large.tree_size}, got another proof")
    if proof.from_root != small.root_hash or proof.to_root != large.root_hash:
        raise LogForked(
            f"head {small.tree_size}:{small.root_hash[:16]}… and head "
            f"{large.tree_size}:{large.root_hash[:16]}… are not the roots it proves consistent"
        )
    if not verify_consistency_offline(proof):
        raise LogForked(
            f"tree size {large.tree_size} does not extend tree size {small.tree_size} "
            "(the consistency proof does not verify)"
        )


class HeadTracker:
    """The largest verified tree head, kept in ``store`` (``store["head"]``) across runs."""

    def __init__(self, store: MutableMapping[str, Any]) -> None:
        self.store = store

    @property
    def largest(self) -> TreeHead | None:
        data = self.store.get("head")
        return TreeHead.from_dict(data) if data else None

    async def observe(self, source: ConsistencySource, head: TreeHead) -> bool:
        """Check a verified ``head`` against the largest one kept; keep it if it is larger.

        Returns True if the kept head changed. Raises :class:`LogForked` on a fork.
        """
        known = self.largest
        if known is not None:
            await check_consistent(source, known, head)
        if known is None or head.tree_size > known.tree_size:
            self.store["head"] = head.to_dict()
            return True
        return False
