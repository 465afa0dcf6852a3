"""What a malicious operator can do to a client, played with an operator's real powers: the chain's
other accounts (a ledger contract of their own), the services' databases, the bus."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import httpx
from web3 import Web3

from chainchat_protocol.abi import ledger_artifact
from chainchat_protocol.errors import NotFound
from chainchat_protocol.ledger import LEDGER_PROOF_GET, EntryRef
from chainchat_protocol.log_entry import LogEntry, leaf_bytes
from chainchat_protocol.merkle import MerkleTree
from chainchat_protocol.proof import hashes_to_hex
from chainchat_service.bus import Bus
from devstack.stack import Stack


def wait_anchored_proof(
    http: httpx.Client, path: str, headers: dict[str, str], timeout: float = 90
) -> dict[str, Any]:
    """Poll a proof route until the entry is anchored."""
    deadline = time.monotonic() + timeout
    while True:
        resp = http.get(path, headers=headers)
        if resp.status_code == 200 and resp.json()["status"] == "anchored":
            return dict(resp.json())
        assert time.monotonic() < deadline, f"{path} not anchored: {resp.status_code} {resp.text[:200]}"
        time.sleep(0.5)


async def ledger_proof(stack: Stack, kind: str, entry_id: str) -> dict[str, Any]:
    """What a malicious gateway could serve: the ledger's own proof of another entry."""
    bus = Bus(stack.nats.client_url(), "trust-test")
    await bus.connect()
    try:
        for _ in range(120):
            try:
                proof = await bus.request(LEDGER_PROOF_GET, EntryRef(kind=kind, id=entry_id))  # type: ignore[arg-type]
            except NotFound:  # the entry is still on its way to the ledger
                await asyncio.sleep(0.5)
                continue
            if proof.status == "anchored":
                return proof.model_dump(mode="json")
            await asyncio.sleep(0.5)
    finally:
        await bus.close()
    raise AssertionError(f"{kind} {entry_id} never anchored")


def rogue_ledger_proof(rpc: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Another Ganache account deploys its own ChainChatLedger and anchors a forged head holding
    ``entry``: a proof that verifies on chain, against the wrong contract."""
    w3 = Web3(Web3.HTTPProvider(rpc))
    operator = w3.eth.accounts[3]
    artifact = ledger_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    deployed = w3.eth.wait_for_transaction_receipt(factory.constructor(operator).transact({"from": operator}))
    rogue = w3.eth.contract(address=deployed["contractAddress"], abi=artifact["abi"])
    tree = MerkleTree()
    tree.append(leaf_bytes(LogEntry.model_validate(entry)))
    tree.append(b"forged sibling")
    tx = rogue.functions.anchor(2, tree.root()).transact({"from": operator})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    return {
        "status": "anchored", "entry": entry, "leaf_index": 0, "tree_size": 2,
        "root_hash": tree.root().hex(), "inclusion_proof": hashes_to_hex(tree.inclusion_proof(0)),
        "head_index": 0, "tx_hash": receipt["transactionHash"].to_0x_hex(),
        "block_number": receipt["blockNumber"], "chain_id": w3.eth.chain_id,
        "contract_address": deployed["contractAddress"],
    }  # fmt: skip


def splice_into(stack: Stack, message_id: str, conversation_id: str) -> str:
    """What an operator with the chat database can do: copy a signed envelope into another
    conversation's history. Returns the new row's id."""
    path = stack.database_url("chat").removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        row = db.execute(
            "SELECT sender_id, envelope, digest, created_at FROM message WHERE id = ?", (message_id,)
        ).fetchone()
        (last,) = db.execute("SELECT last_seq FROM conversation WHERE id = ?", (conversation_id,)).fetchone()
        new_id = f"spliced{message_id}"[:64]
        db.execute(
            "INSERT INTO message (id, conversation_id, seq, sender_id, envelope, digest, file_ids,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, '[]', ?)",
            (new_id, conversation_id, last + 1, *row),
        )
        db.execute("UPDATE conversation SET last_seq = ? WHERE id = ?", (last + 1, conversation_id))
    return new_id
