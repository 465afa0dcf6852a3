"""The client's ledger trust without a server: the pin, fork detection over consistency proofs,
proofs of another entry or another ledger refused before the chain is asked."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from chainchat.client import ApiError
from chainchat.heads import HeadTracker, LogForked, TreeHead, check_consistent
from chainchat.ledger_pin import LedgerPin
from chainchat.proof import verify_proof_onchain
from chainchat_protocol.log_entry import LogEntry, leaf_bytes
from chainchat_protocol.merkle import MerkleTree
from chainchat_protocol.proof import ConsistencyProof, hashes_to_hex

ADDRESS = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


class FakeLog:
    """Serves RFC 9162 consistency proofs from a real tree, the way GET /ledger/consistency does."""

    def __init__(self, leaves: int) -> None:
        self.tree = MerkleTree()
        for i in range(leaves):
            self.tree.append(hashlib.sha256(str(i).encode()).digest())
        self.asked: list[tuple[int, int]] = []

    def head(self, size: int) -> TreeHead:
        return TreeHead(size, self.tree.root(size).hex())

    async def consistency(self, from_size: int, to_size: int) -> ConsistencyProof:
        self.asked.append((from_size, to_size))
        return ConsistencyProof(
            from_size=from_size,
            to_size=to_size,
            from_root=self.tree.root(from_size).hex(),
            to_root=self.tree.root(to_size).hex(),
            proof=hashes_to_hex(self.tree.consistency_proof(from_size, to_size)),
        )


def test_pin_parses_and_compares_addresses_in_any_case() -> None:
    pin = LedgerPin.parse(f"1337:{ADDRESS}")
    assert (pin.chain_id, pin.contract_address, pin.source) == (1337, ADDRESS, "config")
    assert pin.names(1337, ADDRESS.upper().replace("0X", "0x"))
    assert not pin.names(1337, OTHER)
    assert not pin.names(1, ADDRESS)
    assert LedgerPin.from_dict(pin.to_dict()) == pin
    for bad in ("1337", f"x:{ADDRESS}", "1337:0x12", f"0:{ADDRESS}"):
        with pytest.raises(ValueError, match="chain_id"):
            LedgerPin.parse(bad)


async def test_growing_heads_are_checked_and_the_largest_kept() -> None:
    log = FakeLog(20)
    store: dict[str, Any] = {}
    tracker = HeadTracker(store)
    assert await tracker.observe(log, log.head(5)) is True
    assert await tracker.observe(log, log.head(13)) is True
    assert await tracker.observe(log, log.head(8)) is False  # older, still consistent: not kept
    assert await tracker.observe(log, log.head(13)) is False
    assert store["head"]["tree_size"] == 13
    assert log.asked == [(5, 13), (8, 13)]


async def test_a_rewritten_log_is_a_fork_and_never_kept() -> None:
    log = FakeLog(10)
    tracker = HeadTracker({})
    await tracker.observe(log, log.head(6))
    forked = FakeLog(12)
    forked.tree = MerkleTree()
    for i in range(12):  # same length, leaf 3 rewritten
        forked.tree.append(hashlib.sha256(str(i if i != 3 else 99).encode()).digest())
    with pytest.raises(LogForked, match="the server's log forked"):
        await tracker.observe(forked, forked.head(12))
    assert tracker.largest == log.head(6)
    with pytest.raises(LogForked, match="two different roots"):
        await tracker.observe(forked, forked.head(6))


async def test_a_consistency_proof_that_does_not_verify_is_a_fork() -> None:
    log = FakeLog(9)

    class Liar(FakeLog):
        async def consistency(self, from_size: int, to_size: int) -> ConsistencyProof:
            body = await log.consistency(from_size, to_size)
            return body.model_copy(update={"proof": ["00" * 32 for _ in body.proof]})

    class Garbler(FakeLog):
        async def consistency(self, from_size: int, to_size: int) -> ConsistencyProof:
            # what the Client raises when the answer is not a consistency proof at all
            raise ApiError(502, "bad_response", "the server's answer is not the expected shape")

    class Down(FakeLog):
        async def consistency(self, from_size: int, to_size: int) -> ConsistencyProof:
            raise ApiError(0, "unreachable", "cannot reach the server")

    with pytest.raises(LogForked, match="does not verify"):
        await check_consistent(Liar(0), log.head(3), log.head(9))
    with pytest.raises(LogForked, match="malformed"):
        await check_consistent(Garbler(0), log.head(3), log.head(9))
    with pytest.raises(ApiError, match="cannot reach"):  # nothing decided: not called a fork
        await check_consistent(Down(0), log.head(3), log.head(9))
    with pytest.raises(LogForked, match="not the roots"):
        await check_consistent(log, log.head(3), TreeHead(9, "11" * 32))


def _anchored_proof(kind: str, entry_id: str, contract: str) -> dict[str, Any]:
    entry = LogEntry.create(kind, entry_id, "aa" * 32)  # type: ignore[arg-type]
    tree = MerkleTree()
    tree.append(leaf_bytes(entry))
    return {
        "status": "anchored", "entry": entry.model_dump(), "leaf_index": 0, "tree_size": 1,
        "root_hash": tree.root().hex(), "inclusion_proof": [], "head_index": 0,
        "tx_hash": "0x" + "11" * 32, "block_number": 1, "chain_id": 1337, "contract_address": contract,
    }  # fmt: skip


async def test_proof_of_another_entry_or_ledger_fails_before_the_chain_is_asked() -> None:
    pin = LedgerPin(1337, ADDRESS)
    unreachable = "http://127.0.0.1:9"
    tombstone = _anchored_proof("tombstone", "m1", ADDRESS)
    wrong = await verify_proof_onchain(tombstone, unreachable, expect=("message", "m1"), ledger=pin)
    assert (wrong.valid, wrong.code, wrong.kind, wrong.id) == (False, "wrong_entry", "tombstone", "m1")
    other = await verify_proof_onchain(_anchored_proof("message", "m1", OTHER), unreachable, ledger=pin)
    assert (other.valid, other.code) == (False, "ledger_mismatch")
    assert OTHER in (other.reason or "")
    same = await verify_proof_onchain(_anchored_proof("message", "m1", ADDRESS), unreachable, ledger=pin)
    assert same.code == "chain_unreachable"  # it got as far as asking the chain
