"""Devices are visible, announced and revocable (SPEC §11), through the gateway on the real stack:
a second device reaches the owner's connected devices as ``device_added`` and its mailbox as a
mail within 5 s; ``GET /keys/me`` lists the devices; a revoked device is no longer a recipient
chat requires, and a message still sealed to it is accepted (it was current when sealed)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import websockets

from chainchat.crypto import DeviceKeys
from chainchat_testing.accounts import Accounts
from tests.integration.chat_helpers import ChatUser, chat_user, send_body

pytestmark = pytest.mark.integration

SUBJECT = "A new device was added to your ChainChat account"


async def _device_added(gateway_url: str, token: str, trigger: Any, timeout: float) -> dict[str, Any]:
    """Connect as the owner's first device, run ``trigger`` and return the ``device_added`` frame."""
    async with websockets.connect(gateway_url.replace("http://", "ws://") + "/api/v1/ws") as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "ready":
            pass
        await asyncio.to_thread(trigger)
        deadline = time.monotonic() + timeout
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
            if frame["type"] == "device_added":
                return frame  # type: ignore[no-any-return]


def _mail_within(
    accounts: Accounts, email: str, subject: str, since: float, timeout: float
) -> dict[str, Any]:
    deadline = since + timeout
    while True:
        found = [m for m in accounts.mails_to(email) if m.get("subject") == subject]
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {subject!r} mail to {email} within {timeout:.0f}s")
        time.sleep(0.1)


def test_a_new_device_is_announced_by_frame_and_mail_within_5s(
    accounts: Accounts, running_stack: Any
) -> None:
    owner = chat_user(accounts, "announce")  # the first device: no announcement needed
    laptop = DeviceKeys.generate()
    body = {**laptop.publish_body(["hpke-x25519-aes256gcm"]), "label": "Work laptop"}
    recent = accounts.reauth_headers(owner.account)
    started: list[float] = []

    def add() -> None:
        started.append(time.monotonic())
        resp = accounts.http.put("/keys/me", json=body, headers=recent)
        assert resp.status_code == 200, resp.text

    frame = asyncio.run(_device_added(running_stack.gateway_url, owner.token, add, timeout=5))
    assert time.monotonic() - started[0] < 5
    assert (frame["user_id"], frame["key_id"], frame["label"]) == (owner.id, laptop.key_id, "Work laptop")
    assert frame["at"].endswith("Z")
    mail = _mail_within(accounts, owner.account.email, SUBJECT, started[0], timeout=5)
    assert laptop.key_id in mail["text"]
    assert "Work laptop" in mail["text"]
    assert f"DELETE /api/v1/keys/me/{laptop.key_id}" in mail["text"]
    assert "Settings" in mail["text"]

    devices = accounts.http.get("/keys/me", headers=owner.headers).json()["devices"]
    assert [(d["key_id"], d["label"], d["revoked_at"]) for d in devices] == [
        (owner.device.key_id, None, None),
        (laptop.key_id, "Work laptop", None),
    ]


def test_a_peer_does_not_see_the_label_and_bad_labels_are_422(accounts: Accounts) -> None:
    owner = chat_user(accounts, "labels")
    for label in ("", "x" * 65, "tab\there"):
        body = {**DeviceKeys.generate().publish_body(["hpke-x25519-aes256gcm"]), "label": label}
        resp = accounts.http.put("/keys/me", json=body, headers=accounts.reauth_headers(owner.account))
        assert resp.status_code == 422, label
    peer = accounts.create_active("labels-peer")
    listed = accounts.http.get(f"/keys/{owner.id}", headers=peer.headers).json()
    assert all("label" not in k for k in listed["keys"])


def test_a_revoked_device_is_no_longer_a_required_recipient(accounts: Accounts) -> None:
    owner, peer = chat_user(accounts, "revoke-owner"), chat_user(accounts, "revoke-peer")
    second = ChatUser(owner.account, DeviceKeys.generate())
    resp = accounts.http.put(
        "/keys/me",
        json=second.device.publish_body(["hpke-x25519-aes256gcm"]),
        headers=accounts.reauth_headers(owner.account),
    )
    assert resp.status_code == 200, resp.text
    conv = accounts.http.post("/conversations", json={"member_ids": [owner.id]}, headers=peer.headers).json()
    path = f"/conversations/{conv['conversation_id']}/messages"

    # while both devices are the owner's, a message that leaves one out is refused
    without_second = send_body(peer, conv["conversation_id"], [peer, owner], "to the first device only")
    refused = accounts.http.post(path, json=without_second, headers=peer.headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "recipients_mismatch")

    token_only = accounts.http.delete(f"/keys/me/{second.device.key_id}", headers=owner.headers)
    assert (token_only.status_code, token_only.json()["error"]["code"]) == (403, "reauth_required")
    gone = accounts.http.delete(
        f"/keys/me/{second.device.key_id}", headers=accounts.reauth_headers(owner.account)
    )
    assert gone.status_code == 204

    # chat evicts its cached devices on the key_changed event: the same send is accepted now
    deadline = time.monotonic() + 5
    while True:
        retry = send_body(peer, conv["conversation_id"], [peer, owner], "to the first device only")
        accepted = accounts.http.post(path, json=retry, headers=peer.headers)
        if accepted.status_code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert accepted.status_code == 201, accepted.text
    # one still sealed to the revoked device (sealed before the client heard) is accepted too
    stale = send_body(peer, conv["conversation_id"], [peer, owner, second], "sealed before the revocation")
    assert accounts.http.post(path, json=stale, headers=peer.headers).status_code == 201
    # and the revoked device can no longer send as the owner
    from_revoked = send_body(second, conv["conversation_id"], [peer, owner], "from a revoked device")
    sent = accounts.http.post(path, json=from_revoked, headers=owner.headers)
    assert (sent.status_code, sent.json()["error"]["code"]) == (422, "unknown_sender_key")

    devices = accounts.http.get("/keys/me", headers=owner.headers).json()["devices"]
    assert [d["revoked_at"] is not None for d in devices] == [False, True]
