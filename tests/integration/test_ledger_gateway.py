"""The ledger through the public API of the whole running stack, as a user sees it: ledger info and
consistency are public, a message's proof is served only to members of its conversation, becomes
``anchored`` within a few seconds, and verifies against the chain with only the RPC URL."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from chainchat.client import Client
from chainchat.crypto import DeviceKeys
from chainchat.messenger import Messenger
from chainchat.proof import verify_proof_onchain
from chainchat_protocol.envelope import SUITES
from chainchat_protocol.proof import ConsistencyProof, ProofObject, verify_consistency_offline
from chainchat_protocol.subjects import Subject
from chainchat_testing.ledger import connect
from devstack.stack import Stack

pytestmark = pytest.mark.integration


async def _wait_proof(http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(150):
        resp = await http.get(path, headers=headers)
        if resp.status_code == 200 and resp.json()["status"] == "anchored":
            return dict(resp.json())
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path} not anchored: {resp.status_code} {resp.text[:300]}")


async def _messenger(gateway_url: str, account: Any) -> Messenger:
    client = Client(gateway_url)
    await client.login(account.email, account.password)
    device = DeviceKeys.generate()
    body = device.publish_body(sorted(SUITES))
    await client.publish_keys(body["x25519_public"], body["ed25519_public"], body["suite_support"])
    return Messenger(client, account.user_id, device)


def test_ledger_info_is_public_and_consistent(running_stack: Stack, api: httpx.Client) -> None:
    info = api.get("/api/v1/ledger/info")
    assert info.status_code == 200, info.text
    body = info.json()
    assert body["chain_id"] == 1337
    assert {"contract_address", "latest_head", "pending_leaves"} <= body.keys()
    bad = api.get("/api/v1/ledger/consistency", params={"from_size": -1})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"
    huge = api.get("/api/v1/ledger/consistency", params={"from_size": 1, "to_size": 10**12})
    assert huge.status_code == 422
    assert huge.json()["error"]["code"] == "tree_size_out_of_range"


async def test_message_proof_for_members_only_and_verifiable_on_chain(
    running_stack: Stack, accounts: Any
) -> None:
    alice, bob, carol = (accounts.create_active(n) for n in ("alice", "bob", "carol"))
    sender = await _messenger(running_stack.gateway_url, alice)
    receiver = await _messenger(running_stack.gateway_url, bob)
    outsider = await _messenger(running_stack.gateway_url, carol)
    try:
        conversation = await sender.client.create_conversation([bob.user_id])
        sent = await sender.send_text(conversation.conversation_id, "anchor me")
        path = f"/api/v1/messages/{sent.message_id}/proof"
        async with httpx.AsyncClient(base_url=running_stack.gateway_url, timeout=15) as http:
            proof = await _wait_proof(http, path, alice.headers)
            for_bob = (await http.get(path, headers=bob.headers)).json()
            hidden = await http.get(path, headers=carol.headers)
            anonymous = await http.get(path)
            malformed = await http.get("/api/v1/messages/..%2F..%2Fetc/proof", headers=alice.headers)
            consistency = await http.get("/api/v1/ledger/consistency", params={"from_size": 1})
        assert ProofObject.model_validate(proof).entry.id == sent.message_id
        assert for_bob["entry"] == proof["entry"]
        assert hidden.status_code == 404
        assert anonymous.status_code == 401
        assert malformed.status_code == 404
        result = await verify_proof_onchain(proof, running_stack.chain.rpc_url)
        assert result.valid, result.reason
        assert consistency.status_code == 200
        assert verify_consistency_offline(ConsistencyProof.model_validate(consistency.json()))
        await _file_proof_for_members_only(running_stack, sender, conversation.conversation_id, alice, carol)
    finally:
        for messenger in (sender, receiver, outsider):
            await messenger.client.aclose()


async def _file_proof_for_members_only(
    stack: Stack, sender: Messenger, conversation_id: str, member: Any, outsider: Any
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield os.urandom(3000)  # the files service stores opaque (client-encrypted) bytes

    uploaded = await sender.client.upload_file(conversation_id, chunks(), 3000)
    path = f"/api/v1/files/{uploaded.file_id}/proof"
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15) as http:
        proof = await _wait_proof(http, path, member.headers)
        hidden = await http.get(path, headers=outsider.headers)
    assert proof["entry"]["kind"] == "file"
    assert hidden.status_code == 404
    assert (await verify_proof_onchain(proof, stack.chain.rpc_url)).valid


async def test_proof_of_a_message_the_ledger_has_not_received_is_pending_not_404(
    running_stack: Stack, accounts: Any
) -> None:
    """SPEC §11: while the entry is still on its way (here: the ledger's consumer is paused), a
    member gets 200 ``pending`` with a null entry; a non-member still gets 404."""
    alice, bob, carol = (accounts.create_active(n) for n in ("alice", "bob", "carol"))
    sender = await _messenger(running_stack.gateway_url, alice)
    bus = await connect(running_stack.nats.client_url())
    until = (datetime.now(UTC) + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    await bus.js.pause_consumer(Subject.LEDGER_STREAM, "ledger", until)
    try:
        conversation = await sender.client.create_conversation([bob.user_id])
        sent = await sender.send_text(conversation.conversation_id, "not logged yet")
        path = f"/api/v1/messages/{sent.message_id}/proof"
        async with httpx.AsyncClient(base_url=running_stack.gateway_url, timeout=15) as http:
            pending = await http.get(path, headers=alice.headers)
            hidden = await http.get(path, headers=carol.headers)
            await bus.js.resume_consumer(Subject.LEDGER_STREAM, "ledger")
            anchored = await _wait_proof(http, path, alice.headers)
        assert pending.status_code == 200, pending.text
        body = pending.json()
        assert body["status"] == "pending"
        assert body["entry"] is None
        assert all(v is None for k, v in body.items() if k != "status")
        assert hidden.status_code == 404
        assert anchored["entry"]["id"] == sent.message_id
    finally:
        await bus.js.resume_consumer(Subject.LEDGER_STREAM, "ledger")
        await bus.close()
        await sender.client.aclose()
