"""What the chat integration tests share: members with a published device key, sealed envelopes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from chainchat.crypto import DeviceKeys, seal_envelope

# Sealed into every body below (bodies may carry extra fields): tests/security/test_no_plaintext.py
# checks, after the whole session, that it appears in no database, log, store or transaction.
PLAINTEXT_CANARY = "chainchat-plaintext-canary-5f0b2d8e41c94a7fa3e1"


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
    """An approved, logged-in member whose device key is published."""
    account = accounts.create_active(prefix)
    device = DeviceKeys.generate()
    resp = accounts.http.put(
        "/keys/me", json=device.publish_body(["hpke-x25519-aes256gcm"]), headers=account.headers
    )
    assert resp.status_code == 200, resp.text
    return ChatUser(account, device)


def seal(
    sender: ChatUser, conversation_id: str, members: list[ChatUser], text: str = "hello"
) -> dict[str, Any]:
    """A text envelope from ``sender`` sealed to every member's device."""
    envelope = seal_envelope(
        {"type": "text", "text": text, "sent_at": "2025-01-01T00:00:00.000Z", "canary": PLAINTEXT_CANARY},
        sender=sender.device,
        sender_id=sender.id,
        conversation_id=conversation_id,
        recipients=[m.device.public(m.id) for m in members],
    )
    return envelope.model_dump(mode="json")


def send_body(sender: ChatUser, conversation_id: str, members: list[ChatUser], text: str) -> dict[str, Any]:
    """The body of ``POST …/messages`` with a fresh ``client_id``."""
    return {"envelope": seal(sender, conversation_id, members, text), "client_id": uuid.uuid4().hex}
