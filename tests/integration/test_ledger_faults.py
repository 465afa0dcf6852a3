"""Faults on real NATS JetStream and a real Ganache: a ledger killed mid-batch, the chain down for
a while, the chain reset to empty, two ledger instances side by side, a restart mid-transaction, a
forged head anchored by the operator. Each test builds its own stack (``isolated``, from the
conftest), since it kills or restarts components."""

from __future__ import annotations

import asyncio
import hashlib
import random
import shutil
import sqlite3
from pathlib import Path

import pytest
from web3 import Web3

from chainchat.proof import verify_proof_onchain
from chainchat_protocol.abi import ledger_abi
from chainchat_protocol.ledger import (
    LEDGER_APPEND,
    LEDGER_PROOF_BATCH,
    AppendRequest,
    EntryRef,
    ProofBatchRequest,
)
from chainchat_protocol.log_entry import LogEntry
from chainchat_protocol.proof import ProofObject, verify_proof_offline
from chainchat_service.bus import Bus
from chainchat_testing.ledger import (
    IsolatedLedger,
    connect,
    ledger_info,
    make_entries,
    onchain_head_count,
    publish_entries,
    wait_anchored,
    wait_for,
)

pytestmark = pytest.mark.integration


async def all_proofs(bus: Bus, entries: list[LogEntry]) -> list[ProofObject]:
    """Proofs for every entry (asserting none is missing), 200 per request."""
    proofs: list[ProofObject] = []
    for start in range(0, len(entries), 200):
        refs = [EntryRef(kind=e.kind, id=e.id) for e in entries[start : start + 200]]
        reply = await bus.request(LEDGER_PROOF_BATCH, ProofBatchRequest(entries=refs), timeout=20)
        assert reply.missing == [], f"{len(reply.missing)} entries missing from the log"
        proofs += reply.proofs
    return proofs


def anchor_rows(stack: IsolatedLedger) -> list[tuple[int, str, int, int]]:
    """(epoch, status, lost, tree_size) of every anchor record in the (shared SQLite) ledger DB."""
    with sqlite3.connect(stack.stack.var_dir / "ledger.db") as db:
        return list(db.execute("SELECT epoch, status, lost, tree_size FROM ledger_anchor ORDER BY id"))


async def test_kill_9_mid_batch_loses_and_duplicates_nothing(isolated: IsolatedLedger) -> None:
    isolated.start()
    bus = await connect(isolated.nats_url)
    try:
        entries = make_entries(6000)
        publisher = asyncio.create_task(publish_entries(bus, entries))
        await wait_for(lambda: _size_between(bus, 1, len(entries) - 1), timeout=30, interval=0.02,
                       what="the ledger to be mid-way through the stream")  # fmt: skip
        isolated.instances[0].kill()  # SIGKILL: no clean shutdown, batches in flight unacknowledged
        await publisher
        # and the same entries once more, as a publisher retrying after its own crash would
        await publish_entries(bus, entries[:500], msg_id_suffix=":retry")
        isolated.instances[0].start()
        info = await wait_anchored(bus, len(entries), timeout=60)
        assert info.tree_size == len(entries), "every entry exactly once"
        proofs = await all_proofs(bus, entries)
        assert sorted(p.leaf_index for p in proofs) == list(range(len(entries)))
        assert all(p.status == "anchored" for p in proofs)
        sample = random.Random(1).sample(proofs, 3)
        for proof in sample:
            assert (await verify_proof_onchain(proof, isolated.rpc_url)).valid
    finally:
        await bus.close()


async def _size_between(bus: Bus, low: int, high: int) -> bool:
    return low <= (await ledger_info(bus, timeout=2)).tree_size <= high


async def test_chain_down_appends_continue_then_one_catch_up_anchor(isolated: IsolatedLedger) -> None:
    isolated.start()
    bus = await connect(isolated.nats_url)
    try:
        await publish_entries(bus, make_entries(50))
        before = await wait_anchored(bus, 50)
        assert before.contract_address is not None
        heads_before = onchain_head_count(isolated.rpc_url, before.contract_address)
        isolated.stack.chain.stop()
        backlog: list[LogEntry] = []
        for _ in range(10):  # ~10 s of traffic while the chain is away
            batch = make_entries(30)
            await publish_entries(bus, batch)
            backlog += batch
            await asyncio.sleep(1)
        info = await wait_for(lambda: _pending(bus, len(backlog)), timeout=15, what="pending backlog")
        assert info.chain_status == "unreachable"
        assert info.latest_head == before.latest_head
        pending = (await all_proofs(bus, backlog[-3:]))[0]
        assert pending.status == "pending"
        assert verify_proof_offline(pending).ok, "a pending proof still proves inclusion in the tree"
        isolated.stack.chain.start()
        after = await wait_anchored(bus, 50 + len(backlog), timeout=60)
        assert after.pending_leaves == 0
        assert onchain_head_count(isolated.rpc_url, before.contract_address) == heads_before + 1, (
            "ONE catch-up tx"
        )
        proof = (await all_proofs(bus, backlog[:1]))[0]
        assert (await verify_proof_onchain(proof, isolated.rpc_url)).valid
    finally:
        await bus.close()


async def _pending(bus: Bus, at_least: int):  # type: ignore[no-untyped-def]
    info = await ledger_info(bus)
    return info if info.pending_leaves >= at_least else None


async def test_chain_reset_is_detected_and_the_head_reanchored(isolated: IsolatedLedger) -> None:
    isolated.start()
    bus = await connect(isolated.nats_url)
    try:
        entries = make_entries(40)
        await publish_entries(bus, entries)
        before = await wait_anchored(bus, 40)
        old_proof = (await all_proofs(bus, entries[:1]))[0]
        chain = isolated.stack.chain
        chain.stop()
        shutil.rmtree(chain.data_dir)  # Ganache comes back with empty state on the same port
        chain.start()
        more = make_entries(5)
        await publish_entries(bus, more)
        after = await wait_for(lambda: _epoch(bus, 1, 45), timeout=60, what="re-anchor on a new epoch")
        assert after.lost_anchors >= 1, "old anchors kept, flagged as lost"
        assert after.contract_address is not None
        assert onchain_head_count(isolated.rpc_url, after.contract_address) == 1
        assert "CHAIN_RESET_DETECTED" in isolated.log_text()
        rows = anchor_rows(isolated)
        assert any(epoch == 0 and lost for epoch, _, lost, _ in rows)
        assert not any(epoch == 1 and lost for epoch, _, lost, _ in rows)
        new_proof = (await all_proofs(bus, entries[:1]))[0]
        assert new_proof.head_index == 0
        assert new_proof.status == "anchored"
        assert (await verify_proof_onchain(new_proof, isolated.rpc_url)).valid
        # the proof issued before the reset points at a head that no longer exists
        assert not (await verify_proof_onchain(old_proof, isolated.rpc_url)).valid or (
            before.contract_address == after.contract_address and old_proof.head_index == 0
        )
    finally:
        await bus.close()


async def _epoch(bus: Bus, epoch: int, size: int):  # type: ignore[no-untyped-def]
    info = await ledger_info(bus)
    head = info.latest_head
    return info if info.chain_epoch == epoch and head is not None and head.tree_size >= size else None


async def test_two_instances_no_duplicate_leaves_no_competing_anchors(isolated: IsolatedLedger) -> None:
    isolated.start(instances=2)
    bus = await connect(isolated.nats_url)
    try:
        entries = make_entries(2000)
        await publish_entries(bus, entries)
        # the request/reply API is served by both instances (queue group): appends race the stream
        extra = make_entries(60)
        for start in range(0, 60, 6):
            await bus.request(LEDGER_APPEND, AppendRequest(entries=extra[start : start + 6] + entries[:3]))
        total = len(entries) + len(extra)
        info = await wait_anchored(bus, total, timeout=60)
        assert info.tree_size == total
        proofs = await all_proofs(bus, entries + extra)
        assert sorted(p.leaf_index for p in proofs) == list(range(total))
        rows = anchor_rows(isolated)
        assert {status for _, status, _, _ in rows} == {"confirmed"}, rows
        assert info.contract_address is not None
        assert onchain_head_count(isolated.rpc_url, info.contract_address) == len(rows)
        leaders = [i for i in range(2) if "anchor_sending" in isolated.log_text(i)]
        assert len(leaders) == 1, "one instance anchors"
        # the anchoring instance dies: the other takes the lease over and carries on
        isolated.instances[leaders[0]].kill()
        late = make_entries(30)
        await publish_entries(bus, late)
        info = await wait_anchored(bus, total + 30, timeout=60)
        assert info.tree_size == total + 30
        assert {status for _, status, _, _ in anchor_rows(isolated)} == {"confirmed"}
    finally:
        await bus.close()


async def test_ledger_runs_on_anvil(tmp_path: Path) -> None:
    stack = IsolatedLedger(tmp_path / "anvil", chain_kind="anvil").start()
    bus = await connect(stack.nats_url)
    try:
        entries = make_entries(25)
        await publish_entries(bus, entries)
        await wait_anchored(bus, 25)
        proof = (await all_proofs(bus, entries[7:8]))[0]
        assert (await verify_proof_onchain(proof, stack.rpc_url)).valid
    finally:
        await bus.close()
        stack.stop()


# ---------------------------------------------------------------- a forged head on chain
# The ledger refuses to anchor a head that does not extend the last head on chain (SPEC §11): an
# operator (holding the anchorer key) anchors a forged head on the ledger's own contract; that head
# is not a head of the ledger's log, so the ledger anchors nothing after it — and says so in its log
# and its status (the check is ``DeploymentManager._adopt_unrecorded_heads``, before every anchor).


async def test_a_head_that_does_not_extend_the_chain_is_never_anchored(
    isolated: IsolatedLedger,
) -> None:
    isolated.start()
    bus = await connect(isolated.nats_url)
    try:
        await publish_entries(bus, make_entries(4))
        info = await wait_anchored(bus, 4, timeout=90)
        assert info.contract_address is not None
        w3 = Web3(Web3.HTTPProvider(isolated.rpc_url))
        anchorer = w3.eth.account.from_key(isolated.stack.chain.dev_private_key).address
        contract = w3.eth.contract(address=Web3.to_checksum_address(info.contract_address), abi=ledger_abi())
        forged_root = hashlib.sha256(b"a history that never happened").digest()
        tx = contract.functions.anchor(info.tree_size + 1, forged_root).transact({"from": anchorer})
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        heads = onchain_head_count(isolated.rpc_url, info.contract_address)

        await publish_entries(bus, make_entries(3))

        async def refused() -> bool:
            return "that is not a head of this log" in isolated.log_text()

        await wait_for(refused, timeout=60, what="the ledger refusing to anchor a fork")
        assert onchain_head_count(isolated.rpc_url, info.contract_address) == heads
        now = await ledger_info(bus)
        assert now.tree_size == info.tree_size + 3
        assert now.latest_head is not None
        assert now.latest_head.tree_size == info.tree_size
    finally:
        await bus.close()
