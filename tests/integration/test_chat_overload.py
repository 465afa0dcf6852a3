"""A gateway past its capacity refuses sends at once (``rate_limited`` with ``retry_after``) instead of
queueing them; every send it acknowledged is stored, every other one was refused, none is lost."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from devstack.stack import Stack
from tests.integration.chat_helpers import chat_user, send_body
from tests.integration.test_chat_faults import history_seqs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

SENDS = 120


async def test_sends_beyond_what_the_gateway_can_answer_soon_are_refused_not_queued(
    running_stack: Stack, accounts: Any
) -> None:
    # a gateway that answers at most 4 sends at a time: a burst of 120 is mostly refused
    gateway = running_stack.add_service("gateway", env={"WS_MAX_SENDS_OUTSTANDING": "4"})
    a, b = chat_user(accounts, "overload-a"), chat_user(accounts, "overload-b")
    cid = accounts.http.post("/conversations", json={"member_ids": [b.id]}, headers=a.headers).json()[
        "conversation_id"
    ]
    bodies = [send_body(a, cid, [a, b], f"burst {n}") for n in range(SENDS)]
    url = gateway.url.replace("http://", "ws://") + "/api/v1/ws"
    async with websockets.connect(url, subprotocols=["chainchat.v1", f"bearer.{a.token}"]) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        for body in bodies:
            await ws.send(json.dumps({"type": "send", "conversation_id": cid, **body}))
        answers: dict[str, dict[str, Any]] = {}
        while len(answers) < SENDS:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if frame["type"] in ("ack", "error"):
                answers[frame["client_id"]] = frame
    acked = [f for f in answers.values() if f["type"] == "ack"]
    refused = [f for f in answers.values() if f["type"] == "error"]
    assert acked, "some sends must get through"
    assert refused, "a burst of 120 must overflow 4 outstanding sends"
    assert {f["code"] for f in refused} == {"rate_limited"}
    assert all(f["retry_after"] > 0 for f in refused)
    # what was acknowledged is stored, gap-free; what was refused is not
    assert history_seqs(accounts.http, cid, a.headers) == list(range(1, len(acked) + 1))
    assert sorted(f["seq"] for f in acked) == list(range(1, len(acked) + 1))
    gateway.stop()
