"""The stack in Docker containers (compose.yaml, 3 chat and 2 gateway instances), through the edge only:
accounts verified through maildev and approved, keys, a direct and a group conversation live over
WebSockets, a 20 MiB encrypted file up and down, a message proof verified on the chain itself; then
one chat and one gateway container killed under a steady send load (nothing acknowledged is lost or
duplicated, the survivors keep serving); then `docker-compose down` and `up` again: every account,
message, file and anchor is still there (volumes).

The tests run in order on one stack (tests/compose/conftest.py); each adds to ``world`` what the last
one checks after the restart."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chainchat.client import Client, Session
from chainchat.crypto import adecrypt_chunks, aencrypt_chunks, ciphertext_size, generate_file_key
from chainchat.messenger import Messenger
from chainchat.proof import verify_proof_onchain
from chainchat_protocol.b64 import b64d, b64e
from chainchat_testing.accounts import Accounts
from chainchat_testing.streams import MIB, random_plaintext
from tests.chaos._load import Lane, MessageLoad
from tests.compose._stack import SCALE, StackUnderTest
from tests.integration.chat_helpers import ChatUser, chat_user, seal
from tests.integration.test_chat_e2e import Socket, read_text

pytestmark = [pytest.mark.compose, pytest.mark.timeout(900)]

FILE_SIZE = 20 * MIB


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    """What the tests made, for the restart test to find again."""
    return {"messages": {}, "users": {}}


def _instances(stack: StackUnderTest, probes: int = 40) -> dict[str, set[str]]:
    """The instances that answered /api/v1/readyz through the edge, per service."""
    seen: dict[str, set[str]] = {}
    for _ in range(probes):
        body = httpx.get(f"{stack.gateway_url}/api/v1/readyz", timeout=10).json()
        for service, status in body["services"].items():
            if status.get("instance"):
                seen.setdefault(service, set()).add(status["instance"])
    return seen


def test_the_edge_spreads_over_every_gateway_and_chat_instance(compose_stack: StackUnderTest) -> None:
    assert len(compose_stack.container_ids("gateway")) == SCALE["gateway"]
    assert len(compose_stack.container_ids("chat")) == SCALE["chat"]
    seen = _instances(compose_stack)
    assert len(seen["gateway"]) == SCALE["gateway"], seen
    assert len(seen["chat"]) >= 2, seen  # NATS queue groups pick an instance at random
    web = httpx.get(f"{compose_stack.gateway_url}/", timeout=10)
    assert web.status_code == 200
    assert "<html" in web.text.lower()  # the web client, built into the gateway image


async def test_accounts_keys_and_conversations_live(
    compose_stack: StackUnderTest, compose_accounts: Accounts, world: dict[str, Any]
) -> None:
    """Register → verification mail (maildev) → verify → admin approves → login → publish keys; a
    direct and a group conversation, delivered live to sockets opened through the edge."""
    ana, bo, cy = (chat_user(compose_accounts, f"compose-{name}") for name in ("ana", "bo", "cy"))
    world["users"] = {"ana": ana, "bo": bo, "cy": cy}
    http = compose_accounts.http
    direct = http.post("/conversations", json={"member_ids": [bo.id]}, headers=ana.headers)
    group = http.post(
        "/conversations", json={"member_ids": [bo.id, cy.id], "title": "trio"}, headers=ana.headers
    )
    assert direct.status_code == group.status_code == 201, (direct.text, group.text)
    world["direct"], world["group"] = direct.json()["conversation_id"], group.json()["conversation_id"]
    # two sockets each: the edge hands consecutive connections to different gateways
    sockets = {name: [await Socket.open(compose_stack.gateway_url, user) for _ in range(2)]
               for name, user in (("bo", bo), ("cy", cy))}  # fmt: skip
    try:
        for conversation, members, readers in (
            (world["direct"], [ana, bo], ["bo"]),
            (world["group"], [ana, bo, cy], ["bo", "cy"]),
        ):
            for n in range(4):
                text = f"compose {conversation[:8]} {n}"
                body = {"envelope": seal(ana, conversation, members, text), "client_id": uuid.uuid4().hex}
                sent = http.post(f"/conversations/{conversation}/messages", json=body, headers=ana.headers)
                assert sent.status_code == 201, sent.text
                world["messages"][sent.json()["message_id"]] = (conversation, text)
                for name in readers:
                    for sock in sockets[name]:
                        live = await sock.expect("message", timeout=15, conversation_id=conversation)
                        assert live["message"]["message_id"] == sent.json()["message_id"]
                        assert read_text(world["users"][name], ana, live["message"]) == text
    finally:
        for socks in sockets.values():
            for sock in socks:
                await sock.close()
    history = http.get(f"/conversations/{world['group']}/messages", headers=cy.headers).json()["messages"]
    assert [m["seq"] for m in history] == [1, 2, 3, 4]


async def _messenger(stack: StackUnderTest, user: ChatUser) -> Messenger:
    account = user.account
    session = Session(account.access_token, account.refresh_token, time.time() + 600, account.user)
    client = Client(stack.gateway_url, session=session, timeout=120)
    return Messenger(client, user.id, user.device)


async def download_sha256(client: Client, file_id: str, key: bytes) -> str:
    async def raw() -> AsyncIterator[bytes]:
        async with client.download_file(file_id) as resp:
            assert resp.status_code == 200, resp.status_code
            async for chunk in resp.aiter_raw():
                yield chunk

    digest = hashlib.sha256()
    async for plain in adecrypt_chunks(key, raw()):
        digest.update(plain)
    return digest.hexdigest()


async def test_a_20_mib_file_up_and_down(compose_stack: StackUnderTest, world: dict[str, Any]) -> None:
    """Encrypted on the device while uploading through the edge (nginx streams it), stored on the IPFS
    node's volume, downloaded by the other member and decrypted to the same bytes."""
    ana, bo = world["users"]["ana"], world["users"]["bo"]
    sender, receiver = await _messenger(compose_stack, ana), await _messenger(compose_stack, bo)
    try:
        key, digest = generate_file_key(), hashlib.sha256()
        uploaded = await sender.client.upload_file(
            world["direct"],
            aencrypt_chunks(key, random_plaintext(FILE_SIZE, digest)),
            ciphertext_size(FILE_SIZE),
        )
        assert uploaded.size == ciphertext_size(FILE_SIZE)
        assert await download_sha256(receiver.client, uploaded.file_id, key) == digest.hexdigest()
        world["file"] = {"file_id": uploaded.file_id, "key": b64e(key), "sha256": digest.hexdigest()}
    finally:
        await sender.client.aclose()
        await receiver.client.aclose()


async def wait_anchored(client: Client, path: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        proof = await client.request("GET", path)
        if proof["status"] == "anchored":
            return dict(proof)
        assert time.monotonic() < deadline, f"{path} not anchored within {timeout:.0f}s: {proof}"
        await asyncio.sleep(0.5)


async def test_a_message_proof_is_verified_on_chain(
    compose_stack: StackUnderTest, world: dict[str, Any]
) -> None:
    """The ledger anchored the message's tree head on Ganache; the SDK checks the proof against the
    chain's RPC itself (trusting only that URL), and the file's proof too."""
    bo = world["users"]["bo"]
    message_id = next(iter(world["messages"]))
    reader = await _messenger(compose_stack, bo)
    try:
        proof = await wait_anchored(reader.client, f"/messages/{message_id}/proof")
        result = await verify_proof_onchain(proof, compose_stack.chain_rpc_url)
        assert result.valid, result.reason
        assert proof["entry"]["id"] == message_id
        file_proof = await wait_anchored(reader.client, f"/files/{world['file']['file_id']}/proof")
        assert (await verify_proof_onchain(file_proof, compose_stack.chain_rpc_url)).valid
        world["anchors"] = {message_id: proof, world["file"]["file_id"]: file_proof}
    finally:
        await reader.client.aclose()


def _docker_kill(container_id: str) -> None:
    import subprocess

    done = subprocess.run(
        ["docker", "kill", container_id], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def _history(http: httpx.Client, user: ChatUser, conversation_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        params = {"after_seq": messages[-1]["seq"] if messages else 0, "limit": 200}
        page = http.get(f"/conversations/{conversation_id}/messages", params=params, headers=user.headers)
        assert page.status_code == 200, page.text
        batch = page.json()["messages"]
        if not batch:
            return messages
        messages += batch


async def test_killing_a_chat_and_a_gateway_under_load_loses_nothing(
    compose_stack: StackUnderTest, compose_accounts: Accounts, world: dict[str, Any]
) -> None:
    """Four senders at 3 msg/s through the edge; `docker kill` one chat and one gateway container
    (SIGKILL) mid-load. Every acknowledged message is in the history exactly once, in seq order;
    the load keeps being acknowledged after the kills (the survivors serve)."""
    http = compose_accounts.http
    senders = [chat_user(compose_accounts, f"compose-load{n}") for n in range(4)]
    receiver = world["users"]["bo"]
    lanes = []
    for sender in senders:
        made = http.post("/conversations", json={"member_ids": [receiver.id]}, headers=sender.headers)
        assert made.status_code == 201, made.text
        lanes.append(Lane(sender, made.json()["conversation_id"], [sender, receiver]))
    load = MessageLoad(gateways=[compose_stack.gateway_url], lanes=lanes, rate=3.0, give_up_after=90)
    load.start()
    try:
        await load.wait_acks(20, timeout=60)
        chat_victim = compose_stack.container_ids("chat")[0]
        gateway_victim = compose_stack.container_ids("gateway")[0]
        killed_at = time.monotonic()
        await asyncio.to_thread(_docker_kill, chat_victim)
        await asyncio.to_thread(_docker_kill, gateway_victim)
        await asyncio.sleep(25)
    finally:
        await load.stop()
    after = load.acked_between(killed_at + 15, time.monotonic())
    assert load.rejected == [], load.rejected[:5]
    assert load.given_up == [], f"{len(load.given_up)} sends never acknowledged"
    assert after >= 20, f"only {after} acknowledgements from 15 s after the kills: {load.describe()}"
    acked_by_lane: dict[str, list[str]] = {}
    for ack in load.acks:
        acked_by_lane.setdefault(ack.conversation_id, []).append(ack.message_id)
    for lane in lanes:
        history = _history(http, receiver, lane.conversation_id)
        ids = [m["message_id"] for m in history]
        assert len(ids) == len(set(ids)), "a message appears twice"
        assert [m["seq"] for m in history] == list(range(1, len(history) + 1))
        missing = set(acked_by_lane[lane.conversation_id]) - set(ids)
        assert missing == set(), f"{len(missing)} acknowledged messages lost"
        assert len(history) == len(acked_by_lane[lane.conversation_id]), "a retried send stored twice"
    world["load"] = {lane.conversation_id: acked_by_lane[lane.conversation_id] for lane in lanes}
    world["load_reader"] = receiver
    assert (
        await asyncio.to_thread(httpx.get, f"{compose_stack.gateway_url}/api/v1/readyz")
    ).status_code == 200


async def test_down_and_up_again_keeps_everything(
    compose_stack: StackUnderTest, compose_accounts: Accounts, world: dict[str, Any]
) -> None:
    """`docker-compose down` (containers gone, volumes kept) and `up` again: the accounts log in,
    every message and the file are there, the anchored proofs still verify on the chain."""
    await asyncio.to_thread(compose_stack.down)
    assert compose_stack.container_ids("chat") == []
    await asyncio.to_thread(compose_stack.up, SCALE, 400)
    for user in world["users"].values():
        compose_accounts.login(user.account)
    ana, bo = world["users"]["ana"], world["users"]["bo"]
    http = compose_accounts.http
    for conversation in (world["direct"], world["group"]):
        history = _history(http, bo, conversation)
        texts = {m["message_id"]: read_text(bo, ana, m) for m in history if not m.get("deleted")}
        wanted = {mid: text for mid, (conv, text) in world["messages"].items() if conv == conversation}
        assert {mid: texts.get(mid) for mid in wanted} == wanted
    for conversation, acked in world["load"].items():
        assert [m["message_id"] for m in _history(http, world["load_reader"], conversation)] == acked
    reader = await _messenger(compose_stack, bo)
    try:
        file = world["file"]
        assert await download_sha256(reader.client, file["file_id"], b64d(file["key"])) == file["sha256"]
        for object_id, before in world["anchors"].items():
            kind = "messages" if object_id in world["messages"] else "files"
            proof = await wait_anchored(reader.client, f"/{kind}/{object_id}/proof")
            assert (proof["leaf_index"], proof["contract_address"]) == (
                before["leaf_index"],
                before["contract_address"],
            )
            # the anchor made before the restart is still on the chain (its volume), and the new proof
            for checked in (before, proof):
                result = await verify_proof_onchain(checked, compose_stack.chain_rpc_url)
                assert result.valid, result.reason
    finally:
        await reader.client.aclose()
