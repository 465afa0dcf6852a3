"""WebSocket fuzzing: malformed, hostile and oversized frames, floods and bad authentication.

What the gateway promises (``chainchat_gateway.ws``): bad authentication closes with 4001 and the
error code as the reason (or refuses the upgrade with 401); a frame over the limit closes with
1009; a client that floods without reading closes with 4008; a frame that is not a JSON object
with a known ``type`` is answered by an ``error`` frame and the connection stays usable, until a
client sends more than ``WS_MAX_MALFORMED_FRAMES`` frames that are not even JSON objects with a
string ``type`` (1008); a client sending faster than its frame budget is closed (1008). Through
all of it the gateway stays healthy and another user's messages keep arriving live.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import time
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chainchat_testing.accounts import Accounts
from devstack.stack import Stack
from tests.integration.chat_helpers import ChatUser, chat_user, send_body

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

FRAMES = max(40, int(os.environ.get("CHAINCHAT_FUZZ_EXAMPLES", "15")) * 8)
MAX_FRAME = 256 * 1024  # WS_MAX_FRAME_BYTES default
MAX_MALFORMED = 50  # WS_MAX_MALFORMED_FRAMES default
FRAME_BURST = 1000  # WS_FRAME_BURST default


def _url(stack: Stack) -> str:
    return stack.gateway_url.replace("http://", "ws://") + "/api/v1/ws"


async def _connect(stack: Stack, user: ChatUser) -> Any:
    ws = await websockets.connect(_url(stack), max_size=None)
    await ws.send(json.dumps({"type": "auth", "token": user.token}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"
    return ws


async def _closed(ws: Any, timeout: float = 10) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
    except ConnectionClosed:
        pass
    except TimeoutError:
        raise AssertionError("the server did not close the connection") from None
    assert ws.close_code is not None, "no close frame from the server"
    return ws.close_code, ws.close_reason


async def _pong_after(ws: Any, timeout: float = 10) -> list[dict[str, Any]]:
    """Ping; the frames that arrive before the pong (the connection must still answer)."""
    await ws.send(json.dumps({"type": "ping"}))
    frames: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if frame["type"] == "pong":
            return frames
        frames.append(frame)


def _hostile_frames(rng: random.Random, conversation_id: str) -> list[str | bytes]:
    """Frames no client should send: broken JSON, wrong shapes and types, junk bytes."""
    fixed: list[str | bytes] = [
        "", "null", "[]", "42", '"send"', "{", '{"type":', "\x00\x01", "{}", '{"type": null}',
        '{"type": 1}', '{"type": ["send"]}', '{"type": "nope"}', '{"type": "SEND"}',
        '{"type": "send"}', '{"type": "send", "conversation_id": 5}',
        json.dumps({"type": "send", "conversation_id": conversation_id, "envelope": "x"}),
        json.dumps({"type": "send", "conversation_id": conversation_id, "envelope": {}, "client_id": 0}),
        json.dumps({"type": "send", "conversation_id": "../../etc/passwd", "envelope": {}}),
        json.dumps({"type": "typing"}), json.dumps({"type": "typing", "conversation_id": {"a": 1}}),
        json.dumps({"type": "auth"}), json.dumps({"type": "auth", "token": 5}),
        json.dumps({"type": "auth", "token": "e30.e30.sig"}), '{"type": "pong", "extra": "\\ud800"}',
        b"\xff\xfe\xfd", b'{"type": "ping"', "\u202e" * 100, '{"type": "' + "a" * 10_000 + '"}',
        json.dumps({"type": "send", "conversation_id": conversation_id, "envelope": [1] * 1000}),
    ]  # fmt: skip
    while len(fixed) < FRAMES:
        kind = rng.randrange(4)
        if kind == 0:
            fixed.append(rng.randbytes(rng.randrange(1, 512)))
        elif kind == 1:
            fixed.append("".join(chr(rng.randrange(1, 0xD7FF)) for _ in range(rng.randrange(1, 200))))
        elif kind == 2:
            value = rng.choice([None, True, -1, 2**70, 1.5, "x" * 300, [], {}, {"nested": [None]}])
            key = rng.choice(["conversation_id", "envelope", "client_id", "token", "seq", "type"])
            fixed.append(json.dumps({"type": rng.choice(["send", "typing", "auth"]), key: value}))
        else:
            fixed.append(json.dumps({"type": "".join(rng.choices("abcxyz_", k=rng.randrange(1, 12)))}))
    return fixed


def _frame_type(frame: str | bytes) -> object:
    text = frame.decode("utf-8", errors="replace") if isinstance(frame, bytes) else frame
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed.get("type") if isinstance(parsed, dict) else None


@pytest.fixture(scope="module")
def pair(accounts: Accounts) -> tuple[ChatUser, ChatUser, str]:
    """Two users with a conversation: the fuzzer's victim conversation and the live witness."""
    alice, bob = chat_user(accounts, "ws-alice"), chat_user(accounts, "ws-bob")
    resp = accounts.http.post("/conversations", json={"member_ids": [bob.id]}, headers=alice.headers)
    assert resp.status_code in (200, 201), resp.text
    return alice, bob, resp.json()["conversation_id"]


def _still_healthy(stack: Stack, accounts: Accounts, pair: tuple[ChatUser, ChatUser, str]) -> None:
    """/healthz answers and a message bob sends reaches alice live."""
    alice, bob, conversation_id = pair

    async def scenario() -> None:
        ws = await _connect(stack, alice)
        try:
            body = send_body(bob, conversation_id, [alice, bob], "still flowing")
            resp = await asyncio.to_thread(
                accounts.http.post,
                f"/conversations/{conversation_id}/messages",
                json=body,
                headers=bob.headers,
            )
            assert resp.status_code == 201, resp.text
            deadline = time.monotonic() + 10
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
                if frame["type"] == "message" and frame["message"]["message_id"] == resp.json()["message_id"]:
                    return
        finally:
            await ws.close()

    assert httpx.get(f"{stack.gateway_url}/healthz", timeout=5).status_code == 200
    asyncio.run(scenario())


def test_bad_authentication_closes_with_a_reason(running_stack: Stack, pair: Any) -> None:
    async def first_frame(frame: str | bytes) -> tuple[int, str]:
        ws = await websockets.connect(_url(running_stack))
        await ws.send(frame)
        return await _closed(ws)

    async def scenario() -> None:
        cases: list[tuple[str | bytes, str]] = [
            ("not json", "unauthorized"), (b"\x00\xff", "unauthorized"), ('{"type": "ping"}', "unauthorized"),
            (json.dumps({"type": "auth", "token": 42}), "unauthorized"),
            (json.dumps({"type": "auth", "token": "x.y.z"}), "invalid_token"),
            (json.dumps({"type": "auth", "token": pair[0].token + "x"}), "invalid_token"),
        ]  # fmt: skip
        for frame, reason in cases:
            assert await first_frame(frame) == (4001, reason), frame
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(_url(running_stack), subprotocols=["chainchat.v1", "bearer.x.y.z"])
        assert refused.value.response.status_code == 401

    asyncio.run(scenario())


def test_hostile_frames_get_errors_and_the_connection_survives(
    running_stack: Stack, accounts: Accounts, pair: tuple[ChatUser, ChatUser, str]
) -> None:
    alice, _, conversation_id = pair
    rng = random.Random(int(os.environ.get("CHAINCHAT_FUZZ_SEED", "11")))
    frames = _hostile_frames(rng, conversation_id)

    async def scenario() -> list[dict[str, Any]]:
        ws = await _connect(running_stack, alice)
        answers: list[dict[str, Any]] = []
        malformed = 0
        try:
            for start in range(0, len(frames), 20):
                batch = frames[start : start + 20]
                if malformed + sum(not isinstance(_frame_type(f), str) for f in batch) > MAX_MALFORMED:
                    await ws.close()  # this connection's malformed budget is spent: a fresh one
                    ws, malformed = await _connect(running_stack, alice), 0
                for frame in batch:
                    await ws.send(frame)
                    malformed += not isinstance(_frame_type(frame), str)
                answers += await _pong_after(ws)
        finally:
            await ws.close()
        return answers

    answers = asyncio.run(scenario())
    errors = [a for a in answers if a["type"] == "error"]
    assert all(isinstance(e["code"], str) and e["message"] for e in errors)
    # each frame that is not a JSON object with a known type gets its invalid_frame answer, in order
    unknown = [f for f in frames if _frame_type(f) not in ("send", "typing", "auth")]
    assert len([e for e in errors if e["code"] == "invalid_frame"]) == len(unknown)
    assert not [a for a in answers if a["type"] in ("ack", "ready")], "a hostile frame was accepted"
    _still_healthy(running_stack, accounts, pair)


def test_a_client_speaking_another_protocol_is_closed(
    running_stack: Stack, accounts: Accounts, pair: tuple[ChatUser, ChatUser, str]
) -> None:
    """Unknown types are answered and forgiven (a newer client); frames that are not even JSON
    objects with a string type close the connection once past the budget."""

    async def scenario() -> tuple[int, str, int]:
        ws = await _connect(running_stack, pair[0])
        for i in range(MAX_MALFORMED * 2):
            await ws.send(json.dumps({"type": f"future_feature_{i}"}))
        answered = len([f for f in await _pong_after(ws) if f.get("code") == "invalid_frame"])
        for _ in range(MAX_MALFORMED + 1):
            await ws.send("this is not json")
        code, reason = await _closed(ws)
        return code, reason, answered

    assert asyncio.run(scenario()) == (1008, "too many malformed frames", MAX_MALFORMED * 2)
    _still_healthy(running_stack, accounts, pair)


def test_frames_beyond_the_budget_close_1008(
    running_stack: Stack, accounts: Accounts, pair: tuple[ChatUser, ChatUser, str]
) -> None:
    async def scenario() -> tuple[int, str]:
        ws = await _connect(running_stack, pair[0])
        ping = json.dumps({"type": "ping"})
        with contextlib.suppress(ConnectionClosed):
            for _ in range(FRAME_BURST * 3):  # far more than the burst, faster than the refill
                await ws.send(ping)
        return await _closed(ws, timeout=30)

    assert asyncio.run(scenario()) == (1008, "too many frames: slow down")
    _still_healthy(running_stack, accounts, pair)


def test_frame_over_the_limit_closes_1009(running_stack: Stack, accounts: Accounts, pair: Any) -> None:
    async def scenario(size: int) -> tuple[int, str]:
        ws = await _connect(running_stack, pair[0])
        # uncompressed, a frame beyond the server's own limit (16 MiB) is still streaming out when
        # the server closes: the close may arrive during the send as well as after it
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"type": "ping", "pad": "x" * size}))
        return await _closed(ws)

    assert asyncio.run(scenario(MAX_FRAME + 1)) == (1009, "frame too large")
    assert asyncio.run(scenario(17 * 1024 * 1024))[0] == 1009  # beyond the server's own frame limit too
    _still_healthy(running_stack, accounts, pair)


def _flood_closes(stack: Stack) -> float:
    """Connections the server closed as a slow consumer (4008) or over the frame budget (1008)."""
    metrics = httpx.get(f"{stack.gateway_url}/metrics", timeout=5).text
    total = 0.0
    for reason in ("4008", "1008"):
        prefix = f'chainchat_ws_closed_total{{reason="{reason}"}}'
        total += sum(float(ln.split()[-1]) for ln in metrics.splitlines() if ln.startswith(prefix))
    return total


def test_flood_without_reading_is_disconnected(running_stack: Stack, accounts: Accounts, pair: Any) -> None:
    """Pings sent as fast as possible by a client that never reads its answers: the server drops
    the connection — over the frame budget (1008) or as a slow consumer (4008), whichever comes
    first, counted in /metrics — rather than queue without bound. The close frame itself cannot
    reach a client that does not read, so the client may see 1006."""
    before = _flood_closes(running_stack)

    async def scenario() -> tuple[int, str]:
        # a small receive window, so the server's answers back up after a few kilobytes
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(running_stack.gateway_url.rsplit(":", 1)[1])))
        ws = await websockets.connect(_url(running_stack), sock=sock, max_queue=1)
        await ws.send(json.dumps({"type": "auth", "token": pair[0].token}))
        ping = json.dumps({"type": "ping"})
        deadline = time.monotonic() + 60
        try:
            for _ in range(500_000):  # bounded: stops at the disconnect, or fails at the deadline
                await asyncio.wait_for(ws.send(ping), 2)
                if time.monotonic() > deadline:
                    break
        except (ConnectionClosed, TimeoutError):
            pass
        return await _closed(ws, timeout=30)

    code, reason = asyncio.run(scenario())
    assert (code, reason) in (
        (4008, "too slow: outgoing queue full, reconnect and catch up"),
        (1008, "too many frames: slow down"),
        (1006, ""),
    )
    assert _flood_closes(running_stack) == before + 1
    _still_healthy(running_stack, accounts, pair)


def test_send_flood_is_rate_limited(running_stack: Stack, accounts: Accounts, pair: Any) -> None:
    """More sends in flight than a connection may have: the excess is refused with ``rate_limited``."""
    alice, bob, conversation_id = pair

    async def scenario() -> list[dict[str, Any]]:
        ws = await _connect(running_stack, alice)
        try:
            body = send_body(alice, conversation_id, [alice, bob], "flood")
            # one client_id: the sends that get through are one message (idempotent), not hundreds
            frame = json.dumps({"type": "send", "conversation_id": conversation_id, **body})
            await asyncio.gather(*(ws.send(frame) for _ in range(200)))
            return await _pong_after(ws, timeout=60)
        finally:
            await ws.close()

    answers = asyncio.run(scenario())
    assert "rate_limited" in {a.get("code") for a in answers if a["type"] == "error"}
    _still_healthy(running_stack, accounts, pair)
