"""The scaled topology of compose (`--scale chat=3 --scale gateway=2`, two of each other service, all
on PostgreSQL), run locally without Docker exactly as `make up UP_ARGS="--scale … --postgres"` runs it:
users on DIFFERENT gateways sign up, talk live, swap a file, and every message is in the ledger once,
anchored; every instance took part."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from typing import Any

import httpx
import pytest
import websockets

from chainchat.proof import verify_proof_onchain
from chainchat_testing.accounts import Accounts
from chainchat_testing.ledger import connect
from devstack.stack import Stack
from tests.chaos._harness import (
    account_messages,
    check_anchoring,
    metric,
    wait_anchored,
)
from tests.chaos.conftest import SCALE
from tests.integration.chat_helpers import ChatUser, chat_user, seal, send_body

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def stack(shared_scaled_stack: Stack) -> Stack:
    return shared_scaled_stack


def test_the_stack_runs_every_instance_on_its_own_postgres_database(stack: Stack) -> None:
    assert {name: len(stack.services[name]) for name in SCALE} == SCALE
    assert all(svc.alive() for instances in stack.services.values() for svc in instances)
    assert set(stack.databases) == {"auth", "chat", "files", "ledger"}
    for name, database in stack.databases.items():
        for svc in stack.services[name]:
            assert svc.env["DATABASE_URL"].endswith(f"/{database}")
            assert svc.env["DATABASE_URL"].startswith("postgresql://")
    gateways = stack.services["gateway"]
    assert len({g.port for g in gateways}) == 2
    # each gateway knows every files instance and starts its turns with a different one
    files = [f.url for f in stack.services["files"]]
    assert [g.env["FILES_HTTP_URL"] for g in gateways] == [",".join(files), ",".join(files[::-1])]
    for url in stack.gateway_urls:
        ready = httpx.get(f"{url}/api/v1/readyz", timeout=10)
        assert ready.status_code == 200, ready.text


class WsClient:
    """One user's live connection to one gateway: every message frame it receives, by conversation."""

    def __init__(self, user: ChatUser, gateway: str) -> None:
        self.user, self.gateway = user, gateway
        self.frames: list[dict[str, Any]] = []
        self.acks: dict[str, dict[str, Any]] = {}
        self.ws: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WsClient:
        url = self.gateway.replace("http://", "ws://") + "/api/v1/ws"
        self.ws = await websockets.connect(url, open_timeout=10)
        await self.ws.send(json.dumps({"type": "auth", "token": self.user.token}))
        ready = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        assert ready["type"] == "ready", ready
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._reader is not None
        self._reader.cancel()
        await self.ws.close()

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame["type"] == "message":
                self.frames.append(frame)
            elif frame["type"] == "ack":
                self.acks[frame["client_id"]] = frame

    async def send(self, cid: str, members: list[ChatUser], text: str) -> dict[str, Any]:
        client_id = uuid.uuid4().hex
        envelope = seal(self.user, cid, members, text)
        frame = {"type": "send", "conversation_id": cid, "envelope": envelope, "client_id": client_id}
        await self.ws.send(json.dumps(frame))
        for _ in range(200):
            if client_id in self.acks:
                return self.acks[client_id]
            await asyncio.sleep(0.05)
        raise AssertionError("no ack for a WebSocket send within 10 s")

    def seqs(self, cid: str) -> list[int]:
        return [f["message"]["seq"] for f in self.frames if f["conversation_id"] == cid]


async def _eventually(check: Any, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_users_on_different_gateways_talk_swap_files_and_every_message_is_anchored_once(
    stack: Stack, shared_accounts: Accounts
) -> None:
    gw_a, gw_b = stack.gateway_urls
    # sign-up, verification, approval and login: alice through gateway A, bob and carol through B
    accounts_a = shared_accounts
    accounts_b = Accounts(gw_b, stack.mail.web_url)
    accounts_b.admin = accounts_a.admin
    try:
        alice = await asyncio.to_thread(chat_user, accounts_a, "alice")
        bob = await asyncio.to_thread(chat_user, accounts_b, "bob")
        carol = await asyncio.to_thread(chat_user, accounts_b, "carol")
        members = [alice, bob, carol]
        async with (
            httpx.AsyncClient(base_url=f"{gw_a}/api/v1", timeout=20) as http_a,
            httpx.AsyncClient(base_url=f"{gw_b}/api/v1", timeout=20) as http_b,
        ):
            invite = {"member_ids": [bob.id, carol.id], "title": "scaled"}
            created = await http_a.post("/conversations", json=invite, headers=alice.headers)
            assert created.status_code == 201, created.text
            cid = created.json()["conversation_id"]

            async with (
                WsClient(alice, gw_a) as ws_alice,
                WsClient(bob, gw_b) as ws_bob,
                WsClient(carol, gw_b) as ws_carol,
            ):
                # alice posts over HTTP on gateway A, bob sends over his WebSocket on gateway B
                acked: dict[str, str] = {}
                for n in range(18):
                    body = send_body(alice, cid, members, f"a{n}")
                    url = f"/conversations/{cid}/messages"
                    resp = await http_a.post(url, json=body, headers=alice.headers)
                    assert resp.status_code == 201, resp.text
                    acked[body["client_id"]] = resp.json()["message_id"]
                    ack = await ws_bob.send(cid, members, f"b{n}")
                    acked[ack["client_id"]] = ack["message_id"]
                total = len(acked)
                # live: both see every message, in order, without asking for history
                clients = (ws_alice, ws_bob, ws_carol)
                await _eventually(lambda: all(len(c.seqs(cid)) >= total for c in clients))
                for client in clients:
                    assert client.seqs(cid) == list(range(1, total + 1))
                assert {f["message"]["message_id"] for f in ws_alice.frames} == set(acked.values())

            # two files uploaded through each gateway (each gateway takes turns over the files
            # instances, so both are used), each downloaded through the other gateway
            pairs = ((alice, http_a, bob, http_b), (bob, http_b, alice, http_a))
            for uploader, up, reader, down in pairs:
                uploaded = []
                for _ in range(2):
                    data = os.urandom(300_000)
                    put = await up.post(
                        "/files", params={"conversation_id": cid}, content=data,
                        headers={**uploader.headers, "Content-Type": "application/octet-stream"},
                    )  # fmt: skip
                    assert put.status_code == 201, put.text
                    assert put.json()["sha256"] == hashlib.sha256(data).hexdigest()
                    uploaded.append((put.json()["file_id"], data))
                for file_id, data in uploaded:
                    got = await down.get(f"/files/{file_id}", headers=reader.headers)
                    assert got.status_code == 200
                    assert got.content == data

        # exactly once: history gap-free, no message twice, every acknowledged one present
        result, stored = await asyncio.to_thread(
            account_messages, accounts_b.http, {cid: carol.headers}, acked
        )
        assert not result.lost, result.summary()
        assert not result.duplicated, result.summary()
        assert not result.gaps, result.summary()
        assert len(stored) == total
        bus = await connect(stack.nats.client_url(), "scaled-check")
        try:
            proofs, _ = await wait_anchored(stack, bus, stored, timeout=60)
            # the ledger's proof API is a queue group too: ask each instance a few times
            for mid in stored[:20]:
                await wait_anchored(stack, bus, [mid], timeout=10)
        finally:
            await bus.close()
        await asyncio.to_thread(check_anchoring, result, stack, proofs, stored)
        assert result.clean, result.summary()
        # what a user does: fetch a proof through a gateway and check it against the chain itself
        proof = accounts_a.http.get(f"/messages/{stored[0]}/proof", headers=alice.headers)
        assert proof.status_code == 200, proof.text
        assert (await verify_proof_onchain(proof.json(), stack.chain.rpc_url)).valid
    finally:
        accounts_b.close()

    # the load was spread: every instance of every service did part of the work
    counters = {
        "chat": ("chainchat_rpc_handled_total", {"subject": "chat.message.post.v1"}),
        "auth": ("chainchat_rpc_handled_total", {}),
        "ledger": ("chainchat_rpc_handled_total", {}),
        "files": ("chainchat_files_uploads_total", {"outcome": "ok"}),
        "gateway": ("chainchat_ws_frames_out_total", {}),
    }
    spread = {
        name: [metric(svc.url, counter, **labels) for svc in stack.services[name]]
        for name, (counter, labels) in counters.items()
    }
    assert all(n > 0 for counts in spread.values() for n in counts), spread
    assert sum(spread["chat"]) >= total
