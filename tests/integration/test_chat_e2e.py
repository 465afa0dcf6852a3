"""End to end on the real stack: two users with real keys talk over WebSocket through the gateway.

A seals with the SDK and sends over the socket; B receives it live and opens it; a stranger gets
404s; B catches up after a reconnect; a delete becomes a tombstone for both; read receipts, typing
and key changes arrive live; the message's proof turns ``anchored`` once the ledger anchors it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import websockets

from chainchat.crypto import DeviceKeys, open_envelope, seal_envelope
from chainchat.messenger import envelope_fields

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(180)]


@dataclass
class ChatUser:
    account: Any
    device: DeviceKeys

    @property
    def id(self) -> str:
        return str(self.account.user_id)

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.account.headers)

    @property
    def token(self) -> str:
        return str(self.account.access_token)


def chat_user(accounts: Any, prefix: str) -> ChatUser:
    account = accounts.create_active(prefix)
    device = DeviceKeys.generate()
    resp = accounts.http.put(
        "/keys/me", json=device.publish_body(["hpke-x25519-aes256gcm"]), headers=account.headers
    )
    assert resp.status_code == 200, resp.text
    return ChatUser(account, device)


def seal(sender: ChatUser, conversation_id: str, members: list[ChatUser], text: str) -> dict[str, Any]:
    envelope = seal_envelope(
        {"type": "text", "text": text, "sent_at": "2025-01-01T00:00:00.000Z"},
        sender=sender.device,
        sender_id=sender.id,
        conversation_id=conversation_id,
        recipients=[m.device.public(m.id) for m in members],
    )
    return envelope.model_dump(mode="json")


def read_text(reader: ChatUser, sender: ChatUser, message: dict[str, Any]) -> str:
    body = open_envelope(
        envelope_fields(message),
        device=reader.device,
        user_id=reader.id,
        sender=sender.device.public(sender.id),
    )
    return str(body["text"])


class Socket:
    """A WebSocket client that keeps every frame it received, by type."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, base_url: str, user: ChatUser, *, via_header: bool = False) -> Socket:
        url = base_url.replace("http://", "ws://") + "/api/v1/ws"
        if via_header:
            ws = await websockets.connect(url, subprotocols=["chainchat.v1", f"bearer.{user.token}"])
        else:
            ws = await websockets.connect(url)
            await ws.send(json.dumps({"type": "auth", "token": user.token}))
        sock = cls(ws)
        await sock.expect("ready")
        return sock

    async def expect(self, frame_type: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        for frame in self.frames:
            if frame["type"] == frame_type and all(frame.get(k) == v for k, v in match.items()):
                self.frames.remove(frame)
                return frame
        deadline = time.monotonic() + timeout
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), max(0.01, deadline - time.monotonic())))
            if frame["type"] == frame_type and all(frame.get(k) == v for k, v in match.items()):
                return frame
            self.frames.append(frame)

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def close(self) -> None:
        await self.ws.close()


async def test_two_users_talk_end_to_end(accounts: Any, gateway_url: str) -> None:
    ana, bo, cy = chat_user(accounts, "e2e-ana"), chat_user(accounts, "e2e-bo"), chat_user(accounts, "e2e-cy")
    http = accounts.http
    direct = http.post("/conversations", json={"member_ids": [bo.id]}, headers=ana.headers).json()[
        "conversation_id"
    ]
    group = http.post(
        "/conversations", json={"member_ids": [bo.id, cy.id], "title": "trio"}, headers=ana.headers
    )
    gid = group.json()["conversation_id"]

    a_ws = await Socket.open(gateway_url, ana, via_header=True)
    b_ws = await Socket.open(gateway_url, bo)
    assert a_ws.ws.subprotocol == "chainchat.v1"

    client_id = uuid.uuid4().hex
    await a_ws.send({"type": "send", "conversation_id": direct, "client_id": client_id,
                     "envelope": seal(ana, direct, [ana, bo], "meet at noon")})  # fmt: skip
    ack = await a_ws.expect("ack", client_id=client_id)
    live = await b_ws.expect("message", conversation_id=direct)
    assert (live["message"]["message_id"], live["message"]["seq"]) == (ack["message_id"], ack["seq"])
    assert read_text(bo, ana, live["message"]) == "meet at noon"
    assert "meet at noon" not in json.dumps(live)  # the server only ever had ciphertext

    await a_ws.send({"type": "send", "conversation_id": gid, "client_id": "g1",
                     "envelope": seal(ana, gid, [ana, bo, cy], "group hello")})  # fmt: skip
    await a_ws.expect("ack", client_id="g1")
    assert read_text(bo, ana, (await b_ws.expect("message", conversation_id=gid))["message"]) == "group hello"

    # a stranger sees nothing of the direct conversation
    for path in (
        f"/conversations/{direct}",
        f"/conversations/{direct}/messages",
        f"/messages/{ack['message_id']}/proof",
    ):
        assert http.get(path, headers=cy.headers).status_code == 404

    # B goes offline, A keeps writing, B catches up after reconnecting: all, once, in order
    last_seen = live["message"]["seq"]
    await b_ws.close()
    for n in range(3):
        body = {"envelope": seal(ana, direct, [ana, bo], f"while away {n}")}
        assert (
            http.post(f"/conversations/{direct}/messages", json=body, headers=ana.headers).status_code == 201
        )
    b_ws = await Socket.open(gateway_url, bo, via_header=True)
    missed = http.get(
        f"/conversations/{direct}/messages", params={"after_seq": last_seen}, headers=bo.headers
    )
    texts = [read_text(bo, ana, m) for m in missed.json()["messages"]]
    assert texts == ["while away 0", "while away 1", "while away 2"]

    # read receipt and typing reach A live
    newest = missed.json()["messages"][-1]["seq"]
    assert (
        http.post(f"/conversations/{direct}/read", json={"seq": newest}, headers=bo.headers).status_code
        == 200
    )
    receipt = await a_ws.expect("receipt", conversation_id=direct)
    assert (receipt["user_id"], receipt["seq"]) == (bo.id, newest)
    await b_ws.send({"type": "typing", "conversation_id": direct})
    assert (await a_ws.expect("typing", conversation_id=direct))["user_id"] == bo.id

    # delete: a tombstone for both, live and in history
    gone = http.delete(f"/messages/{ack['message_id']}", headers=ana.headers)
    assert gone.status_code == 200
    for sock in (a_ws, b_ws):
        frame = await sock.expect("deleted", message_id=ack["message_id"])
        assert frame == {
            "type": "deleted",
            "conversation_id": direct,
            "message_id": ack["message_id"],
            "seq": ack["seq"],
        }
    for user in (ana, bo):
        page = http.get(
            f"/conversations/{direct}/messages", params={"after_seq": 0, "limit": 1}, headers=user.headers
        )
        tomb = page.json()["messages"][0]
        assert tomb["deleted"] is True
        assert "ciphertext" not in tomb

    # the (deleted) message's proof is anchored on chain, and the members heard of it live
    proof = _wait_anchored(http, ack["message_id"], ana.headers)
    assert proof["entry"]["id"] == ack["message_id"]
    assert proof["tx_hash"]
    anchored = await a_ws.expect("anchored", timeout=30)
    assert isinstance(anchored["head_index"], int)

    # B publishes a new device: A, who shares conversations with B, is told
    new_device = DeviceKeys.generate()
    resp = http.put("/keys/me", json=new_device.publish_body(["hpke-x25519-aes256gcm"]), headers=bo.headers)
    assert resp.status_code == 200
    assert (await a_ws.expect("key_changed", user_id=bo.id, timeout=15))["user_id"] == bo.id
    # and sends sealed to B's old device set are refused from now on
    stale = {"envelope": seal(ana, direct, [ana, bo], "old keys")}
    resp = http.post(f"/conversations/{direct}/messages", json=stale, headers=ana.headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (422, "recipients_mismatch")
    await a_ws.close()
    await b_ws.close()


def _wait_anchored(
    http: Any, message_id: str, headers: dict[str, str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        resp = http.get(f"/messages/{message_id}/proof", headers=headers)
        if resp.status_code == 200 and resp.json()["status"] == "anchored":
            return dict(resp.json())
        if time.monotonic() > deadline:
            raise AssertionError(
                f"proof not anchored in {timeout:.0f}s: {resp.status_code} {resp.text[:300]}"
            )
        time.sleep(0.5)
