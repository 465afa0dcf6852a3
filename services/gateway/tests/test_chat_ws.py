"""The gateway's chat API and WebSocket hub in front of the chat handlers, over a real NATS server.

Only auth is faked (tokens "token-<user>", real device keys); envelopes are sealed and opened with
the SDK, so the server provably relays what it cannot read.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx
import pytest
import websockets

from chainchat.crypto import open_envelope, seal_envelope
from chainchat.messenger import envelope_fields
from chainchat_protocol.auth import RevokedSession, SessionsRevoked
from chainchat_protocol.b64 import b64e
from chainchat_protocol.subjects import Subject

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def people(mini_stack) -> dict[str, Any]:
    for user in ("ann", "ben", "cat"):
        mini_stack.auth.add_user(user)
    async with httpx.AsyncClient(base_url=mini_stack.url + "/api/v1") as http:
        resp = await http.post(
            "/conversations", json={"member_ids": ["ben"]}, headers=mini_stack.headers("ann")
        )
        assert resp.status_code == 201, resp.text
    return {"direct": resp.json()["conversation_id"]}


@pytest.fixture
async def http(mini_stack):
    async with httpx.AsyncClient(base_url=mini_stack.url + "/api/v1", timeout=10) as client:
        yield client


def _seal(
    stack, sender: str, conversation_id: str, members: list[str], text: str = "hi", **kw
) -> dict[str, Any]:
    env = seal_envelope(
        {"type": "text", "text": text, "sent_at": "2025-01-01T00:00:00.000Z"},
        sender=stack.auth.devices[sender][0],
        sender_id=sender,
        conversation_id=conversation_id,
        recipients=stack.auth.public_keys(members),
        **kw,
    )
    return env.model_dump(mode="json")


async def _ws(stack, user: str, *, subprotocol: bool = False):
    if subprotocol:
        ws = await websockets.connect(stack.ws_url, subprotocols=["chainchat.v1", f"bearer.token-{user}"])
    else:
        ws = await websockets.connect(stack.ws_url)
        await ws.send(json.dumps({"type": "auth", "token": f"token-{user}"}))
    ready = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert ready == {"type": "ready", "user_id": user}
    return ws


async def _next(ws, frame_type: str, timeout: float = 5) -> dict[str, Any]:
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] == frame_type:
            return frame


async def test_live_delivery_ack_and_decryption(mini_stack, people) -> None:
    cid = people["direct"]
    ann = await _ws(mini_stack, "ann", subprotocol=True)
    assert ann.subprotocol == "chainchat.v1"
    ben_tab1, ben_tab2 = await _ws(mini_stack, "ben"), await _ws(mini_stack, "ben")
    envelope = _seal(mini_stack, "ann", cid, ["ann", "ben"], "secret words")
    await ann.send(
        json.dumps({"type": "send", "conversation_id": cid, "envelope": envelope, "client_id": "k1"})
    )
    ack = await _next(ann, "ack")
    assert ack["client_id"] == "k1"
    for tab in (ben_tab1, ben_tab2):
        frame = await _next(tab, "message")
        assert frame["message"]["message_id"] == ack["message_id"]
        assert frame["message"]["seq"] == ack["seq"]
        body = open_envelope(
            envelope_fields(frame["message"]), device=mini_stack.auth.devices["ben"][0], user_id="ben",
            sender=mini_stack.auth.devices["ann"][0].public("ann"),
        )  # fmt: skip
        assert body["text"] == "secret words"
    # one NATS subscription for ben's two tabs, gone with the last one
    hub = mini_stack.app.state.ws_hub
    assert len(hub._users["ben"].connections) == 2
    for ws in (ann, ben_tab1, ben_tab2):
        await ws.close()
    await asyncio.sleep(0.2)
    assert "ben" not in hub._users
    assert "ann" not in hub._users


async def test_typing_receipts_ping_and_errors_over_ws(mini_stack, people, http) -> None:
    cid = people["direct"]
    ann, ben = await _ws(mini_stack, "ann"), await _ws(mini_stack, "ben")
    await ann.send(json.dumps({"type": "typing", "conversation_id": cid}))
    assert await _next(ben, "typing") == {"type": "typing", "conversation_id": cid, "user_id": "ann"}
    await ann.send(json.dumps({"type": "ping"}))
    assert await _next(ann, "pong") == {"type": "pong"}
    await ann.send("not json")
    assert (await _next(ann, "error"))["code"] == "invalid_frame"
    forged = _seal(mini_stack, "ann", cid, ["ann", "ben"])
    forged["sender_id"] = "ben"
    await ann.send(json.dumps({"type": "send", "conversation_id": cid, "envelope": forged, "client_id": "f"}))
    error = await _next(ann, "error")
    assert (error["code"], error["client_id"]) == ("sender_mismatch", "f")
    missing_ben = _seal(mini_stack, "ann", cid, ["ann"])
    await ann.send(
        json.dumps({"type": "send", "conversation_id": cid, "envelope": missing_ben, "client_id": "m"})
    )
    assert (await _next(ann, "error"))["code"] == "recipients_mismatch"
    last = (await http.get(f"/conversations/{cid}", headers=mini_stack.headers("ben"))).json()["last_seq"]
    resp = await http.post(
        f"/conversations/{cid}/read", json={"seq": last}, headers=mini_stack.headers("ben")
    )
    assert resp.status_code == 200, resp.text
    receipt = await _next(ann, "receipt")
    assert receipt == {"type": "receipt", "conversation_id": cid, "user_id": "ben", "seq": last}
    await ann.close()
    await ben.close()


async def test_bad_tokens_are_refused(mini_stack) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(mini_stack.ws_url, subprotocols=["chainchat.v1", "bearer.token-nobody"])
    assert refused.value.response.status_code == 401
    assert b"invalid_token" in refused.value.response.body
    ws = await websockets.connect(mini_stack.ws_url)
    await ws.send(json.dumps({"type": "auth", "token": "forged"}))
    assert json.loads(await ws.recv())["code"] == "invalid_token"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd.code == 4001


async def test_idle_clients_are_closed(mini_stack, people, monkeypatch) -> None:
    monkeypatch.setattr(mini_stack.app.state.ws_hub.settings, "ws_idle_timeout_s", 0.5)
    ws = await _ws(mini_stack, "cat")
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 4000


async def test_frames_keep_a_socket_from_idling(mini_stack, people, monkeypatch) -> None:
    monkeypatch.setattr(mini_stack.app.state.ws_hub.settings, "ws_idle_timeout_s", 0.5)
    ws = await _ws(mini_stack, "cat")
    for _ in range(6):  # 1.5 s of pings, each well inside the idle timeout
        await asyncio.sleep(0.25)
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "pong"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 4000


async def test_frames_are_not_compressed(mini_stack, people) -> None:
    # base64 ciphertext gains little from permessage-deflate and zlib costs CPU on every frame
    ws = await websockets.connect(mini_stack.ws_url)  # offers permessage-deflate by default
    assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
    await ws.close()


async def test_sockets_end_with_their_token_unless_renewed_in_band(mini_stack, people) -> None:
    renewed, lapsed = [await websockets.connect(mini_stack.ws_url) for _ in range(2)]
    for ws in (renewed, lapsed):
        await ws.send(json.dumps({"type": "auth", "token": mini_stack.expiring_token("cat", 1.5)}))
        assert json.loads(await ws.recv())["type"] == "ready"
    await renewed.send(json.dumps({"type": "auth", "token": mini_stack.expiring_token("cat", 60)}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(lapsed.recv(), 10)
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
        4001,
        "access token expired; reconnect with a fresh one",
    )
    await renewed.send(json.dumps({"type": "ping"}))
    assert await _next(renewed, "pong") == {"type": "pong"}
    await renewed.send(json.dumps({"type": "auth", "token": mini_stack.expiring_token("ann", 60)}))
    assert (await _next(renewed, "error"))["code"] == "invalid_token"  # another user's token
    await renewed.close()


async def test_revoked_session_loses_its_socket(mini_stack, people) -> None:
    ws = await _ws(mini_stack, "cat")
    revoked = [RevokedSession(session_id="session-cat", expires_at=2**40)]
    event = SessionsRevoked(user_id="cat", sessions=revoked, reason="logout")
    await mini_stack.bus.nc.publish(Subject.AUTH_REVOKED, event.model_dump_json().encode())
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd.code == 4001


async def test_a_client_that_stops_reading_is_dropped_not_waited_for(mini_stack, people, monkeypatch) -> None:
    hub = mini_stack.app.state.ws_hub
    monkeypatch.setattr(hub.settings, "ws_send_queue", 16)
    stalled = await _ws(mini_stack, "cat")  # never reads again
    healthy = await _ws(mini_stack, "cat")
    received = 0

    async def drain() -> None:
        nonlocal received
        async for _ in healthy:
            received += 1

    reader = asyncio.create_task(drain())
    frame = json.dumps(
        {"type": "typing", "conversation_id": "x", "user_id": "y", "pad": b64e(os.urandom(30000))}
    )
    subject = Subject.DELIVERY_TO_USER.format(user_id="cat")
    for _ in range(600):  # ~18 MB: more than the socket buffers of the stalled client hold
        await mini_stack.bus.nc.publish(subject, frame.encode())
        await asyncio.sleep(0.001)
    for _ in range(100):
        if len(hub._users["cat"].connections) == 1:
            break
        await asyncio.sleep(0.1)
    assert len(hub._users["cat"].connections) == 1
    assert received > 500  # the healthy tab kept getting everything meanwhile
    await healthy.close()
    reader.cancel()
    stalled.transport.abort()


async def test_http_api_rejects_bad_input_and_stores_nothing(mini_stack, people, http) -> None:
    cid = people["direct"]
    h = mini_stack.headers("ann")
    good = _seal(mini_stack, "ann", cid, ["ann", "ben"])
    before = (await http.get(f"/conversations/{cid}", headers=h)).json()["last_seq"]
    cases: list[tuple[Any, int, str]] = [
        (b"{not json", 422, "validation_error"),
        ({"envelope": {**good, "suite": "rot13"}}, 422, "unsupported_suite"),
        ({"envelope": {**good, "v": 3}}, 422, "unsupported_version"),
        ({"envelope": {k: v for k, v in good.items() if k != "key_commit"}}, 422, "invalid_envelope"),
        ({"envelope": {**good, "v": 1}}, 422, "invalid_envelope"),  # v1 has no key_commit
        ({"envelope": {**good, "key_commit": "AAAA"}}, 422, "invalid_envelope"),
        ({"envelope": {**good, "nonce": 12}}, 422, "invalid_envelope"),
        ({"envelope": {**good, "ciphertext": "a" * 70000}}, 413, "envelope_too_large"),
        ({"envelope": {**good, "conversation_id": "other"}}, 422, "conversation_mismatch"),
        ({"envelope": good, "client_id": 5}, 422, "validation_error"),
        ({"envelope": _seal(mini_stack, "ann", cid, ["ann"])}, 422, "recipients_mismatch"),
    ]
    for body, status, code in cases:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        resp = await http.post(f"/conversations/{cid}/messages", content=content, headers=h)
        assert (resp.status_code, resp.json()["error"]["code"]) == (status, code), (code, resp.text)
    assert (await http.get(f"/conversations/{cid}", headers=h)).json()["last_seq"] == before
    assert (await http.get(f"/conversations/{cid}/messages?limit=0", headers=h)).status_code == 422
    assert (await http.get(f"/conversations/{cid}/messages?limit=201", headers=h)).status_code == 422
    for path in (f"/conversations/{cid}", f"/conversations/{cid}/messages", "/conversations/nope/messages"):
        resp = await http.get(path, headers=mini_stack.headers("cat"))
        assert (resp.status_code, resp.json()["error"]["code"]) == (404, "conversation_not_found")
    assert (await http.delete("/messages/nope", headers=h)).status_code == 404
    assert (await http.get("/conversations")).status_code == 401


async def test_http_send_history_delete_round_trip(mini_stack, people, http) -> None:
    cid = people["direct"]
    h = mini_stack.headers("ann")
    body = {"envelope": _seal(mini_stack, "ann", cid, ["ann", "ben"]), "client_id": "once"}
    first = await http.post(f"/conversations/{cid}/messages", json=body, headers=h)
    again = await http.post(f"/conversations/{cid}/messages", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    seq = first.json()["seq"]
    page = (await http.get(f"/conversations/{cid}/messages", params={"after_seq": seq - 1}, headers=h)).json()
    assert [m["seq"] for m in page["messages"]] == [seq]
    assert page["messages"][0]["deleted"] is False
    assert (
        await http.delete(f"/messages/{first.json()['message_id']}", headers=mini_stack.headers("ben"))
    ).status_code == 403
    gone = await http.delete(f"/messages/{first.json()['message_id']}", headers=h)
    assert gone.status_code == 200
    page = (await http.get(f"/conversations/{cid}/messages", params={"after_seq": seq - 1}, headers=h)).json()
    assert page["messages"][0]["deleted"] is True
    assert "ciphertext" not in page["messages"][0]
    assert "recipients" not in page["messages"][0]
    again_direct = await http.post(
        "/conversations", json={"member_ids": ["ann"]}, headers=mini_stack.headers("ben")
    )
    assert again_direct.status_code == 200
    assert again_direct.json()["conversation_id"] == cid
