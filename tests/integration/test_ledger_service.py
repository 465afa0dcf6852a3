"""The ledger service on real NATS JetStream and a real Ganache: entries from the stream are
appended once and anchored in one transaction per interval; proofs verify against the chain with
only an RPC URL; the request/reply API is typed and idempotent; bad input never enters the log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from chainchat.proof import verify_proof_onchain
from chainchat_protocol.errors import ChainChatError, Conflict, NotFound, ValidationFailed, error_from_wire
from chainchat_protocol.ledger import (
    LEDGER_APPEND,
    LEDGER_CONSISTENCY,
    LEDGER_PROOF_BATCH,
    LEDGER_PROOF_GET,
    AppendRequest,
    ConsistencyRequest,
    EntryRef,
    LedgerAnchored,
    ProofBatchRequest,
)
from chainchat_protocol.log_entry import LogEntry
from chainchat_protocol.proof import verify_consistency_offline, verify_proof_offline
from chainchat_protocol.rpc import RpcReply
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.outbox import coalesce, log_entry_row
from chainchat_testing.ledger import (
    IsolatedLedger,
    connect,
    ledger_info,
    make_entries,
    publish_entries,
    wait_anchored,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsolatedLedger]:
    stack = IsolatedLedger(Path(tmp_path_factory.mktemp("ledger-svc"))).start()
    yield stack
    stack.stop()


@pytest.fixture
async def bus(ledger: IsolatedLedger) -> AsyncIterator[Bus]:
    client = await connect(ledger.nats_url)
    yield client
    await client.close()


async def test_stream_entries_are_appended_once_and_anchored(bus: Bus) -> None:
    events: list[LedgerAnchored] = []

    async def on_event(msg) -> None:  # type: ignore[no-untyped-def]
        events.append(LedgerAnchored.model_validate_json(msg.data))

    await bus.nc.subscribe(Subject.LEDGER_ANCHORED, cb=on_event)
    before = (await ledger_info(bus)).tree_size
    entries = make_entries(300) + make_entries(20, kind="file")
    await publish_entries(bus, entries)
    # re-published with new message ids: past the stream's dedupe, caught by the ledger
    await publish_entries(bus, entries[:50], msg_id_suffix=":again")
    info = await wait_anchored(bus, before + len(entries))
    assert info.tree_size == before + len(entries)
    assert info.pending_leaves == 0
    assert info.chain_status == "ok"
    assert info.contract_address is not None
    await wait_for(lambda: _covered(events, entries), timeout=10, what="anchored events")
    heads = {e.head_index for e in events}
    assert len(heads) <= 3, "one anchor per interval, not per entry"


async def _covered(events: list[LedgerAnchored], entries: list[LogEntry]) -> bool:
    seen = {(k, i) for e in events for k in ("message", "file") for i in e.ids_of(k)}
    return all((e.kind, e.id) in seen for e in entries)


async def test_anchored_proof_verifies_on_chain_and_tampering_fails(bus: Bus, ledger: IsolatedLedger) -> None:
    entries = make_entries(37)
    reply = await bus.request(LEDGER_APPEND, AppendRequest(entries=entries))
    await wait_anchored(bus, reply.tree_size)
    proof = await bus.request(LEDGER_PROOF_GET, EntryRef(kind="message", id=entries[5].id))
    assert proof.status == "anchored"
    assert proof.entry == entries[5]
    assert verify_proof_offline(proof).ok
    result = await verify_proof_onchain(proof, ledger.rpc_url)
    assert result.valid, result.reason
    assert result.onchain_verify_inclusion
    assert result.onchain_head_matches
    assert result.tx_matches
    forged_entry = proof.model_copy(update={"entry": entries[6]})
    assert not (await verify_proof_onchain(forged_entry, ledger.rpc_url)).valid
    wrong_head = proof.model_copy(update={"root_hash": "00" * 32})
    assert not (await verify_proof_onchain(wrong_head, ledger.rpc_url)).valid
    wrong_chain = proof.model_copy(update={"chain_id": 1})
    assert "chain" in ((await verify_proof_onchain(wrong_chain, ledger.rpc_url)).reason or "")


async def test_append_rpc_is_idempotent_and_reports_leaf_indexes(bus: Bus) -> None:
    entries = make_entries(10)
    first = await bus.request(LEDGER_APPEND, AppendRequest(entries=entries))
    indexes = [r.leaf_index for r in first.results]
    assert indexes == list(range(indexes[0], indexes[0] + 10))
    assert not any(r.duplicate for r in first.results)
    again = await bus.request(LEDGER_APPEND, AppendRequest(entries=entries[3:5] + make_entries(1)))
    assert [r.leaf_index for r in again.results[:2]] == indexes[3:5]
    assert [r.duplicate for r in again.results] == [True, True, False]


async def test_append_rpc_rejects_bad_input_with_typed_errors(bus: Bus) -> None:
    size = (await ledger_info(bus)).tree_size
    good = make_entries(1)[0].model_dump()
    for bad in (
        {**good, "kind": "bogus"},
        {**good, "id": "x" * 201},
        {**good, "id": ""},
        {**good, "digest": "nothex"},
        {**good, "at": "2025-02-30T00:00:00Z"},
    ):
        with pytest.raises(ValidationFailed):
            await _raw_append(bus, {"entries": [bad]})
    with pytest.raises(ValidationFailed) as caught:
        await bus.request(LEDGER_APPEND, AppendRequest(entries=[LogEntry(**{**good, "id": "a b"})]))
    assert caught.value.code == "invalid_entry_id"
    await bus.request(LEDGER_APPEND, AppendRequest(entries=[LogEntry(**good)]))
    with pytest.raises(Conflict):
        await bus.request(LEDGER_APPEND, AppendRequest(entries=[LogEntry(**{**good, "digest": "ab" * 32})]))
    assert (await ledger_info(bus)).tree_size == size + 1


async def _raw_append(bus: Bus, body: dict) -> None:
    """Send a request the typed models would refuse to build (what a buggy caller might send)."""
    msg = await bus.nc.request(LEDGER_APPEND.subject, json.dumps(body).encode(), timeout=5)
    reply = RpcReply.model_validate_json(msg.data)
    if reply.error:
        raise error_from_wire(reply.error.code, reply.error.message, reply.error.status)


async def test_bad_stream_messages_are_terminated_and_not_appended(bus: Bus, ledger: IsolatedLedger) -> None:
    size = (await ledger_info(bus)).tree_size
    good = make_entries(1)[0]
    bad_bodies = [
        ("ledger.entry.bogus.v1", b'{"kind":"bogus","id":"x","digest":"' + b"a" * 64 + b'","at":"x"}'),
        ("ledger.entry.message.v1", b"{not json"),
        ("ledger.entry.message.v1", b""),
        ("ledger.entry.file.v1", good.model_dump_json().encode()),  # kind does not match subject
        ("ledger.entry.message.v1", b"x" * 8000),
    ]
    for subject, data in bad_bodies:
        await bus.js.publish(subject, data, timeout=5)
    await publish_entries(bus, [good])
    await wait_for(lambda: _size_is(bus, size + 1), timeout=15, what="the one good entry")
    consumer = await bus.js.consumer_info(Subject.LEDGER_STREAM, "ledger")
    await wait_for(lambda: _drained(bus), timeout=10, what="nothing left unacknowledged")
    assert str(consumer.config.ack_policy) in ("explicit", "AckPolicy.EXPLICIT")
    await asyncio.sleep(4)  # longer than ack_wait: terminated messages must not come back
    assert (await ledger_info(bus)).tree_size == size + 1
    assert "ledger_entry_rejected" in ledger.log_text()


async def test_batched_stream_messages_append_each_entry_once_in_order(
    bus: Bus, ledger: IsolatedLedger
) -> None:
    size = (await ledger_info(bus)).tree_size
    entries = make_entries(6)
    rows = [SimpleNamespace(id=i, **log_entry_row(e)) for i, e in enumerate(entries)]
    (first,) = coalesce(rows[:4])  # what an outbox relay sends: one message, four entries
    await bus.js.publish(first.subject, first.payload, headers={"Nats-Msg-Id": first.msg_id}, timeout=5)
    # a batch overlapping the first (a retry grouped differently), with one malformed entry
    items = [json.loads(r.payload) for r in rows[2:]]
    items.insert(1, {**items[0], "id": "bad-digest", "digest": "zz"})
    await bus.js.publish(first.subject, json.dumps(items).encode(), timeout=5)
    await publish_entries(bus, entries[:1], msg_id_suffix=":again")  # a single-entry duplicate
    await wait_for(lambda: _size_is(bus, size + 6), timeout=15, what="the six good entries")
    await wait_for(lambda: _drained(bus), timeout=10, what="nothing left unacknowledged")
    refs = [EntryRef(kind="message", id=e.id) for e in entries]
    batch = await bus.request(LEDGER_PROOF_BATCH, ProofBatchRequest(entries=refs))
    assert [p.leaf_index for p in batch.proofs] == list(range(size, size + 6))
    assert (await ledger_info(bus)).tree_size == size + 6
    assert "entry 1: invalid digest" in ledger.log_text()


async def _size_is(bus: Bus, size: int) -> bool:
    return (await ledger_info(bus)).tree_size == size


async def _drained(bus: Bus) -> bool:
    info = await bus.js.consumer_info(Subject.LEDGER_STREAM, "ledger")
    return info.num_ack_pending == 0 and info.num_pending == 0


async def test_proof_of_unknown_entry_is_not_found_and_batch_reports_missing(bus: Bus) -> None:
    with pytest.raises(NotFound) as caught:
        await bus.request(LEDGER_PROOF_GET, EntryRef(kind="message", id="never-logged"))
    assert caught.value.code == "entry_not_found"
    entries = make_entries(3)
    await bus.request(LEDGER_APPEND, AppendRequest(entries=entries))
    refs = [EntryRef(kind="message", id=e.id) for e in entries] + [EntryRef(kind="key", id="nope")]
    batch = await bus.request(LEDGER_PROOF_BATCH, ProofBatchRequest(entries=refs))
    assert [p.entry for p in batch.proofs] == entries
    assert all(verify_proof_offline(p).ok for p in batch.proofs)
    assert batch.missing == [EntryRef(kind="key", id="nope")]


async def test_consistency_between_anchored_heads(bus: Bus) -> None:
    first = await bus.request(LEDGER_APPEND, AppendRequest(entries=make_entries(5)))
    old = await wait_anchored(bus, first.tree_size)
    second = await bus.request(LEDGER_APPEND, AppendRequest(entries=make_entries(7)))
    new = await wait_anchored(bus, second.tree_size)
    assert old.latest_head is not None
    assert new.latest_head is not None
    proof = await bus.request(LEDGER_CONSISTENCY, ConsistencyRequest(from_size=old.latest_head.tree_size))
    assert proof.to_size == new.latest_head.tree_size
    assert proof.from_root == old.latest_head.root_hash
    assert proof.to_root == new.latest_head.root_hash
    assert verify_consistency_offline(proof)
    with pytest.raises(ValidationFailed) as caught:
        await bus.request(LEDGER_CONSISTENCY, ConsistencyRequest(from_size=5, to_size=10**9))
    assert caught.value.code == "tree_size_out_of_range"


async def test_info_and_readiness(bus: Bus, ledger: IsolatedLedger) -> None:
    info = await ledger_info(bus)
    assert info.chain_id == 1337
    assert info.chain_epoch == 0
    assert info.lost_anchors == 0
    async with httpx.AsyncClient(base_url=ledger.instances[0].url) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        metrics = (await http.get("/metrics")).text
    assert "chainchat_ledger_tree_size" in metrics
    assert "chainchat_ledger_anchor_txs_total" in metrics


async def test_errors_are_chainchat_errors(bus: Bus) -> None:
    with pytest.raises(ChainChatError):
        await bus.request(LEDGER_CONSISTENCY, ConsistencyRequest(from_size=3, to_size=2))
