"""Trust on the device, as a malicious operator would test it (SPEC §11): proofs of another entry or
another ledger, a message moved into another conversation. Real stack; the operator's powers are
played with what an operator has: the chain's other accounts, the services' databases."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from chainchat.client import Client
from chainchat.crypto import DeviceKeys
from chainchat.messenger import Messenger, WrongConversation
from chainchat_protocol.abi import ledger_artifact
from chainchat_protocol.envelope import SUITES
from chainchat_protocol.ledger import LEDGER_PROOF_GET, EntryRef
from chainchat_protocol.log_entry import LogEntry, leaf_bytes
from chainchat_protocol.merkle import MerkleTree
from chainchat_protocol.proof import hashes_to_hex
from chainchat_service.bus import Bus
from devstack.stack import Stack
from tests.integration.cli_helpers import PASSWORD, Cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, running_stack: Stack) -> Cli:
    return Cli(tmp_path_factory.mktemp("trust-cli"), running_stack.gateway_url)


def _two_users(cli: Cli, accounts: Any, a: str, b: str) -> tuple[Any, Any, str]:
    people = [accounts.create_active(who, password=PASSWORD) for who in (a, b)]
    for who, account in zip((a, b), people, strict=True):
        cli.run("login", "--email", account.email, "--server", cli.server, profile=who)
        cli.run("keys", "init", profile=who)
    conv = cli.json("chat", "new", people[1].user_id, profile=a)["conversation_id"]
    return people[0], people[1], conv


def _verify(cli: Cli, rpc: str, *args: str, profile: str) -> tuple[int, dict[str, Any]]:
    result = cli.run("--json", "--rpc", rpc, "verify", *args, profile=profile, ok=False)
    return result.returncode, json.loads(result.stdout)


def _wait_verified(cli: Cli, rpc: str, message_id: str, profile: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        code, report = _verify(cli, rpc, message_id, profile=profile)
        if code == 0 or time.monotonic() > deadline:
            assert code == 0, report
            return report
        time.sleep(1)


async def _ledger_proof(stack: Stack, kind: str, entry_id: str) -> dict[str, Any]:
    """What a malicious gateway could serve: the ledger's own proof of another entry."""
    bus = Bus(stack.nats.url, "trust-test")
    await bus.connect()
    try:
        for _ in range(120):
            proof = await bus.request(LEDGER_PROOF_GET, EntryRef(kind=kind, id=entry_id))  # type: ignore[arg-type]
            if proof.status == "anchored":
                return proof.model_dump(mode="json")
            await asyncio.sleep(0.5)
    finally:
        await bus.close()
    raise AssertionError(f"{kind} {entry_id} never anchored")


def _rogue_ledger_proof(rpc: str, entry: dict[str, Any]) -> dict[str, Any]:
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


def test_verify_names_the_entry_and_refuses_a_tombstone_or_a_rogue_ledger(
    cli: Cli, accounts: Any, running_stack: Stack, tmp_path: Path
) -> None:
    rpc = running_stack.chain.rpc_url
    _, _, conv = _two_users(cli, accounts, "vera", "walt")
    sent = cli.json("send", conv, "proof me", profile="vera")
    report = _wait_verified(cli, rpc, sent["message_id"], "walt")
    assert {"kind", "id", "digest", "leaf_index", "tree_size", "head_index", "tx_hash",
            "contract_address", "valid"} <= report.keys()  # fmt: skip
    assert (report["kind"], report["id"], report["digest"]) == ("message", sent["message_id"], sent["digest"])
    info = cli.json("ledger", "info", profile="walt")
    assert info["pinned"]["contract_address"] == info["contract_address"]
    assert info["pinned"]["source"] == "first_use"
    assert info["pinned"]["largest_verified_head"]["tree_size"] >= report["tree_size"]

    logged = asyncio.run(_ledger_proof(running_stack, "message", sent["message_id"]))["entry"]

    # the tombstone's proof carries the same digest; served as the message's, it is refused
    cli.run("delete", sent["message_id"], profile="vera")
    tombstone = asyncio.run(_ledger_proof(running_stack, "tombstone", sent["message_id"]))
    assert tombstone["entry"]["digest"] == sent["digest"]
    served = tmp_path / "tombstone.json"
    served.write_text(json.dumps(tombstone))
    code, wrong = _verify(cli, rpc, sent["message_id"], "--file", str(served), profile="walt")
    assert code == 1
    assert (wrong["valid"], wrong["code"], wrong["kind"]) == (False, "wrong_entry", "tombstone")

    # a proof from the operator's own contract verifies on chain — and is still refused
    forged = _rogue_ledger_proof(rpc, logged)
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(forged))
    code, mismatch = _verify(cli, rpc, "--file", str(forged_file), profile="walt")
    assert code == 1
    assert (mismatch["valid"], mismatch["code"]) == (False, "ledger_mismatch")
    assert "ledger_mismatch" in cli.run("--rpc", rpc, "verify", "--file", str(forged_file),
                                        profile="walt", ok=False).stdout  # fmt: skip
    # what the pin prevents: a client pinned to the rogue contract calls the forgery valid
    rogue_pin = f"{forged['chain_id']}:{forged['contract_address']}"
    fooled = cli.run("--json", "--ledger", rogue_pin, "--rpc", rpc, "verify", "--file", str(forged_file),
                     profile="rogue-pinned", ok=False)  # fmt: skip
    assert json.loads(fooled.stdout)["valid"] is True, fooled.stdout


async def test_sdk_open_refuses_a_message_moved_into_another_conversation(
    running_stack: Stack, accounts: Any
) -> None:
    ana, bo, cy = (accounts.create_active(who) for who in ("ana-splice", "bo-splice", "cy-splice"))
    messengers = []
    for account in (ana, bo):
        client = Client(running_stack.gateway_url)
        await client.login(account.email, account.password)
        device = DeviceKeys.generate()
        body = device.publish_body(sorted(SUITES))
        await client.publish_keys(body["x25519_public"], body["ed25519_public"], body["suite_support"])
        messengers.append(Messenger(client, account.user_id, device))
    alice, bob = messengers
    try:
        direct = (await alice.client.create_conversation([bo.user_id]))["conversation_id"]
        group = (await alice.client.create_conversation([bo.user_id, cy.user_id], "splice"))[
            "conversation_id"
        ]
        sent = await alice.send_text(direct, "for bob only")
        splice_into(running_stack, sent["message_id"], group)
        [moved] = await bob.client.history(group)
        assert moved["message_id"] != sent["message_id"]
        with pytest.raises(WrongConversation):
            await bob.open(moved, conversation_id=group)
        [original] = await bob.client.history(direct)
        assert (await bob.open(original, conversation_id=direct))["text"] == "for bob only"
    finally:
        for m in messengers:
            await m.client.aclose()


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
