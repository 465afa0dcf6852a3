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

from chainchat.crypto import DeviceKeys, open_envelope
from chainchat.messenger import envelope_fields
from tests.integration.chat_helpers import ChatUser, chat_user, seal

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(180)]


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


@dataclass
class Scene:
    """Ana and Bo (members), Cy (a stranger to the direct conversation), their sockets."""

    http: Any
    gateway_url: str
    ana: ChatUser
    bo: ChatUser
    cy: ChatUser
    direct: str = ""
    group: str = ""
    a_ws: Socket | None = None
    b_ws: Socket | None = None

    def post(self, path: str, body: dict[str, Any], user: ChatUser) -> Any:
        return self.http.post(path, json=body, headers=user.headers)

    @property
    def a(self) -> Socket:
        assert self.a_ws is not None
        return self.a_ws

    @property
    def b(self) -> Socket:
        assert self.b_ws is not None
        return self.b_ws


async def test_two_users_talk_end_to_end(accounts: Any, gateway_url: str) -> None:
    users = [chat_user(accounts, f"e2e-{name}") for name in ("ana", "bo", "cy")]
    scene = Scene(accounts.http, gateway_url, *users)
    scene.direct = scene.post("/conversations", {"member_ids": [scene.bo.id]}, scene.ana).json()[
        "conversation_id"
    ]
    group = scene.post(
        "/conversations", {"member_ids": [scene.bo.id, scene.cy.id], "title": "trio"}, scene.ana
    )
    scene.group = group.json()["conversation_id"]
    scene.a_ws = await Socket.open(gateway_url, scene.ana, via_header=True)
    scene.b_ws = await Socket.open(gateway_url, scene.bo)
    assert scene.a.ws.subprotocol == "chainchat.v1"

    first = await live_send_and_open(scene)
    strangers_see_nothing(scene, first["message_id"])
    await catch_up_after_reconnect(scene, last_seen=first["seq"])
    await receipts_and_typing(scene)
    await delete_makes_tombstones(scene, first)
    await proof_gets_anchored(scene, first["message_id"])
    await key_change_is_announced(scene)
    await scene.a.close()
    await scene.b.close()


async def live_send_and_open(scene: Scene) -> dict[str, Any]:
    """A seals and sends over the socket; B receives live and opens it (direct and group)."""
    ana, bo, cy = scene.ana, scene.bo, scene.cy
    client_id = uuid.uuid4().hex
    envelope = seal(ana, scene.direct, [ana, bo], "meet at noon")
    await scene.a.send(
        {"type": "send", "conversation_id": scene.direct, "client_id": client_id, "envelope": envelope}
    )
    ack = await scene.a.expect("ack", client_id=client_id)
    live = await scene.b.expect("message", conversation_id=scene.direct)
    assert (live["message"]["message_id"], live["message"]["seq"]) == (ack["message_id"], ack["seq"])
    assert read_text(bo, ana, live["message"]) == "meet at noon"
    assert "meet at noon" not in json.dumps(live)  # the server only ever had ciphertext
    envelope = seal(ana, scene.group, [ana, bo, cy], "group hello")
    await scene.a.send(
        {"type": "send", "conversation_id": scene.group, "client_id": "g1", "envelope": envelope}
    )
    await scene.a.expect("ack", client_id="g1")
    in_group = await scene.b.expect("message", conversation_id=scene.group)
    assert read_text(bo, ana, in_group["message"]) == "group hello"
    return dict(ack)


def strangers_see_nothing(scene: Scene, message_id: str) -> None:
    paths = [
        f"/conversations/{scene.direct}",
        f"/conversations/{scene.direct}/messages",
        f"/messages/{message_id}/proof",
    ]
    assert [scene.http.get(p, headers=scene.cy.headers).status_code for p in paths] == [404, 404, 404]


async def catch_up_after_reconnect(scene: Scene, last_seen: int) -> None:
    """B goes offline, A keeps writing, B catches up after reconnecting: all, once, in order."""
    await scene.b.close()
    for n in range(3):
        body = {"envelope": seal(scene.ana, scene.direct, [scene.ana, scene.bo], f"while away {n}")}
        assert scene.post(f"/conversations/{scene.direct}/messages", body, scene.ana).status_code == 201
    scene.b_ws = await Socket.open(scene.gateway_url, scene.bo, via_header=True)
    params = {"after_seq": last_seen}
    missed = scene.http.get(
        f"/conversations/{scene.direct}/messages", params=params, headers=scene.bo.headers
    )
    texts = [read_text(scene.bo, scene.ana, m) for m in missed.json()["messages"]]
    assert texts == ["while away 0", "while away 1", "while away 2"]


async def receipts_and_typing(scene: Scene) -> None:
    newest = scene.http.get(f"/conversations/{scene.direct}", headers=scene.bo.headers).json()["last_seq"]
    assert scene.post(f"/conversations/{scene.direct}/read", {"seq": newest}, scene.bo).status_code == 200
    receipt = await scene.a.expect("receipt", conversation_id=scene.direct)
    assert (receipt["user_id"], receipt["seq"]) == (scene.bo.id, newest)
    await scene.b.send({"type": "typing", "conversation_id": scene.direct})
    assert (await scene.a.expect("typing", conversation_id=scene.direct))["user_id"] == scene.bo.id


async def delete_makes_tombstones(scene: Scene, sent: dict[str, Any]) -> None:
    """A deletes its message: both get the live frame and a tombstone in history."""
    assert scene.http.delete(f"/messages/{sent['message_id']}", headers=scene.ana.headers).status_code == 200
    expected = {
        "type": "deleted",
        "conversation_id": scene.direct,
        "message_id": sent["message_id"],
        "seq": sent["seq"],
    }
    for sock in (scene.a, scene.b):
        assert await sock.expect("deleted", message_id=sent["message_id"]) == expected
    for user in (scene.ana, scene.bo):
        params = {"after_seq": sent["seq"] - 1, "limit": 1}
        page = scene.http.get(f"/conversations/{scene.direct}/messages", params=params, headers=user.headers)
        tomb = page.json()["messages"][0]
        assert tomb["deleted"] is True
        assert "ciphertext" not in tomb


async def proof_gets_anchored(scene: Scene, message_id: str) -> None:
    """The (deleted) message's proof is anchored on chain, and the members heard of it live."""
    proof = _wait_anchored(scene.http, message_id, scene.ana.headers)
    assert proof["entry"]["id"] == message_id
    assert proof["tx_hash"]
    anchored = await scene.a.expect("anchored", timeout=30)
    assert isinstance(anchored["head_index"], int)


async def key_change_is_announced(scene: Scene) -> None:
    """B publishes a new device: A, who shares conversations with B, is told; stale seals fail."""
    new_device = DeviceKeys.generate()
    # a second device needs B's password again (SPEC §11)
    again = scene.http.post(
        "/auth/reauth", json={"password": scene.bo.account.password}, headers=scene.bo.headers
    )
    headers = {**scene.bo.headers, "X-Reauth-Token": again.json()["reauth_token"]}
    resp = scene.http.put(
        "/keys/me", json=new_device.publish_body(["hpke-x25519-aes256gcm"]), headers=headers
    )
    assert resp.status_code == 200
    assert (await scene.a.expect("key_changed", user_id=scene.bo.id, timeout=15))["user_id"] == scene.bo.id
    stale = {"envelope": seal(scene.ana, scene.direct, [scene.ana, scene.bo], "old keys")}
    resp = scene.post(f"/conversations/{scene.direct}/messages", stale, scene.ana)
    assert (resp.status_code, resp.json()["error"]["code"]) == (422, "recipients_mismatch")


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
