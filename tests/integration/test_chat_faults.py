"""Chat under faults on the real stack: two chat instances racing, a gateway killed under its
clients, NATS restarted mid-traffic. Nothing acknowledged may be lost, nothing shown twice.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets

from devstack.stack import ServiceProcess, Stack
from tests.integration.chat_helpers import ChatUser, chat_user, send_body

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def instances(stack: Stack, name: str, count: int) -> list[ServiceProcess]:
    """At least ``count`` live instances of a service (extra ones start on free ports)."""
    live = [s for s in stack.services[name] if s.alive()]
    while len(live) < count:
        live.append(stack.add_service(name))
    return live


def history_seqs(http: httpx.Client, cid: str, headers: dict[str, str]) -> list[int]:
    seqs: list[int] = []
    while True:
        page = http.get(
            f"/conversations/{cid}/messages", params={"after_seq": len(seqs), "limit": 200}, headers=headers
        )
        batch = [m["seq"] for m in page.json()["messages"]]
        if not batch:
            return seqs
        seqs += batch


@pytest.fixture(scope="module")
def pair(accounts: Any) -> tuple[ChatUser, ChatUser]:
    return chat_user(accounts, "fault-a"), chat_user(accounts, "fault-b")


def test_two_chat_instances_keep_the_sequence_gap_free(
    running_stack: Stack, accounts: Any, pair: Any
) -> None:
    chats = instances(running_stack, "chat", 2)
    a, b = pair
    http = accounts.http
    cid = http.post("/conversations", json={"member_ids": [b.id], "title": "race"}, headers=a.headers).json()[
        "conversation_id"
    ]
    bodies = [send_body(user, cid, [a, b], f"m{n}") for n in range(30) for user in (a, b)]

    def post(body: dict[str, Any]) -> int:
        sender = a if body["envelope"]["sender_id"] == a.id else b
        with httpx.Client(base_url=f"{running_stack.gateway_url}/api/v1", timeout=30) as client:
            resp = client.post(f"/conversations/{cid}/messages", json=body, headers=sender.headers)
            assert resp.status_code == 201, resp.text
            return int(resp.json()["seq"])

    with ThreadPoolExecutor(12) as pool:
        seqs = list(pool.map(post, bodies))
    assert sorted(seqs) == list(range(1, len(bodies) + 1))
    assert history_seqs(http, cid, b.headers) == list(range(1, len(bodies) + 1))
    handled = [_handled_posts(svc) for svc in chats]
    assert all(n > 0 for n in handled), handled  # both instances took part


def _handled_posts(svc: ServiceProcess) -> float:
    text = httpx.get(f"{svc.url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("chainchat_rpc_handled_total") and 'subject="chat.message.post.v1"' in line
    )


@dataclass
class Follower:
    """A client doing what a real one does: live frames, and ``after_seq`` catch-up after every
    (re)connect or gap. ``shown`` is what its user would see, in order."""

    user: ChatUser
    cid: str
    gateways: list[str]
    shown: list[int] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    connects: int = 0
    live: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        turn = 0
        while not stop.is_set():
            url = self.gateways[turn % len(self.gateways)]
            try:
                await self._session(url, stop)
            except (OSError, TimeoutError, websockets.WebSocketException, httpx.HTTPError):
                turn += 1  # that gateway is gone: the next one
                await asyncio.sleep(0.2)

    async def _session(self, url: str, stop: asyncio.Event) -> None:
        async with websockets.connect(url.replace("http://", "ws://") + "/api/v1/ws", open_timeout=5) as ws:
            await ws.send(json.dumps({"type": "auth", "token": self.user.account.access_token}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "ready"
            self.connects += 1
            async with httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=10) as http:
                await self.catch_up(http)
                while not stop.is_set():
                    try:
                        frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    except TimeoutError:
                        continue
                    if frame["type"] == "message" and frame["conversation_id"] == self.cid:
                        await self.accept(frame["message"], http)

    async def accept(self, message: dict[str, Any], http: httpx.AsyncClient) -> None:
        last = self.shown[-1] if self.shown else 0
        if message["seq"] > last + 1:
            await self.catch_up(http)  # a gap: fill it from history first
            last = self.shown[-1] if self.shown else 0
        if message["seq"] == last + 1:
            self.shown.append(message["seq"])
            self.ids.append(message["message_id"])
            self.live += 1

    async def catch_up(self, http: httpx.AsyncClient) -> None:
        while True:
            after = self.shown[-1] if self.shown else 0
            resp = await http.get(
                f"/conversations/{self.cid}/messages",
                params={"after_seq": after, "limit": 200},
                headers=self.user.headers,
            )
            resp.raise_for_status()
            messages = resp.json()["messages"]
            if not messages:
                return
            for m in messages:
                self.shown.append(m["seq"])
                self.ids.append(m["message_id"])


async def test_clients_of_a_killed_gateway_reconnect_and_catch_up(
    running_stack: Stack, accounts: Any, pair: Any
) -> None:
    instances(running_stack, "chat", 2)
    doomed, spare = running_stack.add_service("gateway"), running_stack.add_service("gateway")
    a, b = pair
    cid = accounts.http.post(
        "/conversations", json={"member_ids": [b.id], "title": "ha"}, headers=a.headers
    ).json()["conversation_id"]
    followers = [Follower(b, cid, [doomed.url, spare.url]), Follower(a, cid, [doomed.url, spare.url])]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(f.run(stop)) for f in followers]
    await _wait_for(lambda: all(f.connects for f in followers))
    acked: list[str] = []
    async with httpx.AsyncClient(base_url=f"{running_stack.gateway_url}/api/v1", timeout=30) as http:
        for n in range(60):
            resp = await http.post(
                f"/conversations/{cid}/messages", json=send_body(a, cid, [a, b], f"{n}"), headers=a.headers
            )
            assert resp.status_code == 201, resp.text
            acked.append(resp.json()["message_id"])
            if n == 20:
                doomed.kill()  # mid-stream, with both clients connected to it
            await asyncio.sleep(0.02)
    await _wait_for(lambda: all(len(f.shown) >= len(acked) for f in followers), timeout=30)
    stop.set()
    await asyncio.gather(*tasks)
    for follower in followers:
        assert follower.shown == list(range(1, len(acked) + 1))  # none missing, none twice, in order
        assert follower.ids == acked
        assert follower.connects >= 2
        assert follower.live > 0


async def test_nats_restart_loses_nothing_acknowledged(
    running_stack: Stack, accounts: Any, pair: Any
) -> None:
    a, b = pair
    http = accounts.http
    cid = http.post("/conversations", json={"member_ids": [b.id], "title": "nats"}, headers=a.headers).json()[
        "conversation_id"
    ]
    acked: dict[str, int] = {}
    refused: list[int] = []
    restarted = asyncio.Event()

    async def sender() -> None:
        async with httpx.AsyncClient(base_url=f"{running_stack.gateway_url}/api/v1", timeout=10) as client:
            for n in range(40):
                body = send_body(a, cid, [a, b], f"{n}")
                for _ in range(200):  # retry the same client_id until it is acknowledged
                    try:
                        resp = await client.post(
                            f"/conversations/{cid}/messages", json=body, headers=a.headers
                        )
                    except httpx.HTTPError:
                        resp = None
                    if resp is not None and resp.status_code == 201:
                        acked[body["client_id"]] = resp.json()["seq"]
                        break
                    assert resp is None or resp.status_code in (503, 504), resp.text
                    refused.append(n)
                    await asyncio.sleep(0.25)
                await asyncio.sleep(0.05)

    async def restart() -> None:
        await _wait_for(lambda: len(acked) >= 10)
        await asyncio.to_thread(running_stack.nats.stop)
        # longer than the gateway's request timeout: some sends fail and are retried, and the
        # buffered first attempts may still reach chat after the restart (client_id dedupes them)
        await asyncio.sleep(6.0)
        await asyncio.to_thread(running_stack.nats.start)
        restarted.set()

    await asyncio.gather(sender(), restart())
    assert restarted.is_set()
    assert refused  # the outage hit the traffic: sends were refused and retried
    assert len(acked) == 40
    assert sorted(acked.values()) == list(range(1, 41))  # retries were idempotent: no gaps, no extras
    assert history_seqs(http, cid, b.headers) == list(range(1, 41))
    await asyncio.to_thread(running_stack.wait_ready, 90)


async def _wait_for(predicate: Any, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)
