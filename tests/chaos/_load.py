"""A bounded, steady message load over the public HTTP API, as the SDK would send it.

Each lane is one sender in one conversation sending at a fixed rate. A send is retried with the SAME
``client_id`` (the SDK's idempotency key) on a transport error, 429 or 5xx, moving to the next gateway
(and staying there) as a client behind a load balancer would, until it is acknowledged (201).
Everything is recorded: acknowledged sends (client_id -> message_id, seq), every failed attempt with
its time, so a scenario can count what was lost or duplicated and how long users were affected.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.integration.chat_helpers import ChatUser, send_body

RETRYABLE = {429, 500, 502, 503, 504}


@dataclass
class Lane:
    sender: ChatUser
    conversation_id: str
    members: list[ChatUser]


@dataclass
class Ack:
    client_id: str
    conversation_id: str
    message_id: str
    seq: int
    first_try: float
    acked_at: float
    attempts: int


@dataclass
class MessageLoad:
    gateways: list[str]
    lanes: list[Lane]
    rate: float = 4.0  # messages per second per lane
    give_up_after: float = 120.0  # a send not acknowledged within this is reported as given up
    acks: list[Ack] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)  # (time, status or error)
    given_up: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # 4xx other than 429: a bug, not an outage
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _home: dict[int, int] = field(default_factory=dict)  # lane -> index of the gateway it uses

    def describe(self) -> str:
        return f"{len(self.lanes)} senders x {self.rate:g} msg/s over {len(self.gateways)} gateways"

    def start(self) -> None:
        self._stop.clear()
        self._tasks = [asyncio.create_task(self._lane(i, lane)) for i, lane in enumerate(self.lanes)]

    async def stop(self) -> None:
        """Stop sending new messages; sends in progress finish (acknowledged or given up)."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    @property
    def acked(self) -> dict[str, str]:
        return {a.client_id: a.message_id for a in self.acks}

    def acked_between(self, start: float, end: float) -> int:
        return sum(1 for a in self.acks if start <= a.acked_at <= end)

    def failures_between(self, start: float, end: float) -> list[tuple[float, str]]:
        return [f for f in self.failures if start <= f[0] <= end]

    def recovery(self, fault_at: float, until: float | None = None, slow: float = 2.0) -> float:
        """How long after ``fault_at`` users were affected: up to the last acknowledgement, in
        [fault_at, until], of a send that needed a retry or took longer than ``slow`` seconds
        (a failed or stalled send); 0.0 when no send was disturbed."""
        end = until or time.monotonic()
        disturbed = [
            a.acked_at
            for a in self.acks
            if fault_at <= a.acked_at <= end and (a.attempts > 1 or a.acked_at - a.first_try > slow)
        ]
        return max(disturbed) - fault_at if disturbed else 0.0

    async def wait_acks(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acks) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.acks)} of {count} sends acknowledged in {timeout:.0f}s")
            await asyncio.sleep(0.05)

    async def _lane(self, index: int, lane: Lane) -> None:
        interval = 1.0 / self.rate
        n = 0
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0)) as http:
            next_at = time.monotonic()
            while not self._stop.is_set():
                body = send_body(lane.sender, lane.conversation_id, lane.members, f"lane{index}-{n}")
                await self._deliver(http, index, lane, body)
                n += 1
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at, time.monotonic() - interval)  # no burst to catch up after a stall

    async def _deliver(self, http: httpx.AsyncClient, index: int, lane: Lane, body: dict[str, Any]) -> None:
        first = time.monotonic()
        attempt = 0
        while True:
            # stay on the gateway that answered last; move on only when it fails (as a balancer would)
            gateway = self.gateways[self._home.setdefault(index, index % len(self.gateways))]
            attempt += 1
            url = f"{gateway}/api/v1/conversations/{lane.conversation_id}/messages"
            try:
                resp = await http.post(url, json=body, headers=lane.sender.headers)
                outcome = str(resp.status_code)
            except httpx.HTTPError as exc:
                resp, outcome = None, type(exc).__name__
            now = time.monotonic()
            if resp is not None and resp.status_code == 201:
                data = resp.json()
                self.acks.append(
                    Ack(body["client_id"], lane.conversation_id, data["message_id"], data["seq"], first, now,
                        attempt)
                )  # fmt: skip
                return
            if resp is not None and resp.status_code not in RETRYABLE:
                self.rejected.append(f"{resp.status_code} {resp.text[:200]}")
                return
            self.failures.append((now, outcome))
            self._home[index] = (self._home[index] + 1) % len(self.gateways)
            if now - first > self.give_up_after:
                self.given_up.append(body["client_id"])
                return
            await asyncio.sleep(min(0.2 * attempt, 1.0))
