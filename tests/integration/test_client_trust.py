"""Trust on the device, as a malicious operator would test it (SPEC §11): proofs of another entry or
another ledger, a forked log, a message moved into another conversation, a device added without the
user knowing. Real stack; the operator's powers are played with what an operator has (see
``trust_helpers``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from chainchat.client import Client
from chainchat.crypto import DeviceKeys
from chainchat.devices import UnconfirmedDevices
from chainchat.heads import HeadTracker
from chainchat.ledger_pin import LedgerPin
from chainchat.messenger import Messenger, WrongConversation
from chainchat.verifier import LedgerVerifier
from chainchat_protocol.envelope import SUITES
from chainchat_protocol.proof import ConsistencyProof
from devstack.stack import Stack
from tests.integration.cli_helpers import PASSWORD, Cli
from tests.integration.trust_helpers import ledger_proof, rogue_ledger_proof, splice_into, wait_anchored_proof

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, running_stack: Stack) -> Cli:
    return Cli(tmp_path_factory.mktemp("trust-cli"), running_stack.gateway_url)


def _cli_users(cli: Cli, accounts: Any, *names: str) -> list[Any]:
    people = [accounts.create_active(who, password=PASSWORD) for who in names]
    for who, account in zip(names, people, strict=True):
        cli.run("login", "--email", account.email, "--server", cli.server, profile=who)
        cli.run("keys", "init", profile=who)
    return people


def _verify(cli: Cli, rpc: str, *args: str, profile: str) -> tuple[int, dict[str, Any]]:
    result = cli.run("--json", "--rpc", rpc, "verify", *args, profile=profile, ok=False)
    return result.returncode, json.loads(result.stdout)


def test_verify_names_the_entry_and_refuses_a_tombstone_or_a_rogue_ledger(
    cli: Cli, accounts: Any, running_stack: Stack, tmp_path: Path
) -> None:
    rpc = running_stack.chain.rpc_url
    vera, walt = _cli_users(cli, accounts, "vera", "walt")
    conv = cli.json("chat", "new", walt.user_id, profile="vera")["conversation_id"]
    sent = cli.json("send", conv, "proof me", profile="vera")
    wait_anchored_proof(accounts.http, f"/messages/{sent['message_id']}/proof", walt.headers)
    code, report = _verify(cli, rpc, sent["message_id"], profile="walt")
    assert code == 0, report
    assert {"kind", "id", "digest", "leaf_index", "tree_size", "head_index", "tx_hash",
            "contract_address", "valid"} <= report.keys()  # fmt: skip
    assert (report["kind"], report["id"], report["digest"]) == ("message", sent["message_id"], sent["digest"])
    info = cli.json("ledger", "info", profile="walt")
    assert info["pinned"]["contract_address"] == info["contract_address"]
    assert info["pinned"]["source"] == "first_use"
    assert info["pinned"]["largest_verified_head"]["tree_size"] >= report["tree_size"]
    logged = asyncio.run(ledger_proof(running_stack, "message", sent["message_id"]))["entry"]

    # the tombstone's proof carries the same digest; served as the message's, it is refused
    accounts.http.delete(f"/messages/{sent['message_id']}", headers=vera.headers).raise_for_status()
    tombstone = asyncio.run(ledger_proof(running_stack, "tombstone", sent["message_id"]))
    assert tombstone["entry"]["digest"] == sent["digest"]
    served = tmp_path / "tombstone.json"
    served.write_text(json.dumps(tombstone))
    code, wrong = _verify(cli, rpc, sent["message_id"], "--file", str(served), profile="walt")
    assert code == 1
    assert (wrong["valid"], wrong["code"], wrong["kind"]) == (False, "wrong_entry", "tombstone")

    # a proof from the operator's own contract verifies on chain — and is still refused
    forged = rogue_ledger_proof(rpc, logged)
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(forged))
    refused = cli.run("--rpc", rpc, "verify", "--file", str(forged_file), profile="walt", ok=False)
    assert refused.returncode == 1
    assert "ledger_mismatch" in refused.stdout
    # what the pin prevents: a client pinned to the rogue contract calls the forgery valid
    rogue_pin = f"{forged['chain_id']}:{forged['contract_address']}"
    fooled = cli.run("--json", "--ledger", rogue_pin, "--rpc", rpc, "verify", "--file", str(forged_file),
                     profile="rogue-pinned", ok=False)  # fmt: skip
    assert json.loads(fooled.stdout)["valid"] is True, fooled.stdout


def test_send_refuses_an_unconfirmed_device_until_keys_confirm(cli: Cli, accounts: Any) -> None:
    xia, yan = _cli_users(cli, accounts, "xia", "yan")
    conv = cli.json("chat", "new", yan.user_id, profile="xia")["conversation_id"]
    cli.run("send", conv, "before", profile="xia")  # first sight: yan's device pinned
    cli.run("send", conv, "hi xia", profile="yan")  # and yan's own account, on yan's first device
    # yan gets a second device (the same account on another machine)
    cli.run("login", "--email", yan.email, "--server", cli.server, profile="yan-laptop")
    new_key = cli.json("keys", "init", profile="yan-laptop")["key_id"]
    refused = cli.run("send", conv, "to the new device?", profile="xia", ok=False)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr  # the reason, in one line
    assert "unconfirmed_devices" in refused.stderr
    assert new_key in refused.stderr
    assert f"chainchat keys confirm {yan.user_id}" in refused.stderr.replace("\n", "")
    confirmed = cli.json("keys", "confirm", yan.user_id, profile="xia")
    assert confirmed["confirmed"][yan.user_id] == [new_key]
    cli.run("send", conv, "now both of yan's devices", profile="xia")
    # the own account: yan's first device has not confirmed the laptop yet
    own = cli.run("send", conv, "from the first device", profile="yan", ok=False)
    assert own.returncode == 1
    assert "unconfirmed_devices" in own.stderr
    cli.run("send", "--accept-new-devices", conv, "it was me", profile="yan")
    history = cli.run("history", conv, profile="yan-laptop").stdout
    assert "now both of yan's devices" in history
    assert "it was me" in history


async def _sdk_user(stack: Stack, account: Any) -> Messenger:
    client = Client(stack.gateway_url)
    await client.login(account.email, account.password)
    device = DeviceKeys.generate()
    body = device.publish_body(sorted(SUITES))
    await client.publish_keys(body["x25519_public"], body["ed25519_public"], body["suite_support"])
    return Messenger(client, account.user_id, device, {})


async def test_sdk_never_repins_silently_and_notices_a_forked_log(
    running_stack: Stack, accounts: Any
) -> None:
    ann, ben = (accounts.create_active(who) for who in ("ann-pin", "ben-pin"))
    alice, bob = await _sdk_user(running_stack, ann), await _sdk_user(running_stack, ben)
    try:
        conv = (await alice.client.create_conversation([ben.user_id])).conversation_id
        first = await alice.send_text(conv, "hello")
        pinned = dict(alice.pins)
        # the server (or a stolen token) adds a device to ben's account
        extra = DeviceKeys.generate().publish_body(sorted(SUITES))
        await bob.client.publish_keys(extra["x25519_public"], extra["ed25519_public"], extra["suite_support"])
        await alice.devices_of(ben.user_id, refresh=True)  # as on a key_changed frame
        with pytest.raises(UnconfirmedDevices) as refused:
            await alice.send_text(conv, "this must not reach the new device")
        assert list(refused.value.devices) == [ben.user_id]
        assert dict(alice.pins) == pinned  # nothing re-pinned
        assert len(await alice.confirm(ben.user_id)) == 1
        await alice.send_text(conv, "confirmed")

        # fork detection: the gateway's consistency route replaced by a test double of a forked log
        proof = wait_anchored_proof(accounts.http, f"/messages/{first.message_id}/proof", ann.headers)
        info = await alice.client.ledger_info()
        pin = LedgerPin(int(info.chain_id), str(info.contract_address))
        state: dict[str, Any] = {}
        verifier = LedgerVerifier(pin, running_stack.chain.rpc_url, HeadTracker(state))
        assert (await verifier.verify(alice.client, proof, expect=("message", first.message_id))).valid
        later = await alice.send_text(conv, "a newer head")
        newer = wait_anchored_proof(accounts.http, f"/messages/{later.message_id}/proof", ann.headers)
        assert newer["tree_size"] > proof["tree_size"]

        class ForkedLog:
            async def consistency(self, from_size: int, to_size: int) -> ConsistencyProof:
                body = await alice.client.consistency(from_size, to_size)
                return body.model_copy(update={"proof": ["00" * 32 for _ in body.proof] or ["00" * 32]})

        forked = await verifier.verify(ForkedLog(), newer, expect=("message", later.message_id))
        assert (forked.valid, forked.code) == (False, "log_forked")
        assert "the server's log forked" in (forked.reason or "")
        assert state["head"]["tree_size"] == proof["tree_size"]  # the forked head was not kept
        honest = await verifier.verify(alice.client, newer, expect=("message", later.message_id))
        assert honest.valid, honest.reason
    finally:
        for m in (alice, bob):
            await m.client.aclose()


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
        direct = (await alice.client.create_conversation([bo.user_id])).conversation_id
        group = (await alice.client.create_conversation([bo.user_id, cy.user_id], "splice")).conversation_id
        sent = await alice.send_text(direct, "for bob only")
        splice_into(running_stack, sent.message_id, group)
        [moved] = await bob.client.history(group)
        assert moved.message_id != sent.message_id
        with pytest.raises(WrongConversation):
            await bob.open(moved, conversation_id=group)
        [original] = await bob.client.history(direct)
        assert (await bob.open(original, conversation_id=direct))["text"] == "for bob only"
    finally:
        for m in messengers:
            await m.client.aclose()
