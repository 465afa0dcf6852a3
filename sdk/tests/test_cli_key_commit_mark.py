"""``chainchat history`` marks messages from v1 envelopes as not key-committing (issue 21)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from chainchat.cli.messages import _line, render
from chainchat.client import Client
from chainchat.crypto import DeviceKeys, seal_envelope
from chainchat.messenger import Messenger
from chainchat_protocol.chat import MessageView


@pytest.mark.parametrize(("version", "marked"), [(1, True), (2, False)])
def test_history_line_marks_v1(version: int, marked: bool) -> None:
    keys = DeviceKeys.generate()
    # a message to oneself: the sender key is this device's, so opening needs no server
    messenger = Messenger(client=cast(Client, None), user_id="alice", device=keys)
    env = seal_envelope({"type": "text", "text": "hi", "sent_at": "2025-01-01T00:00:00.000Z"},
                        sender=keys, sender_id="alice", conversation_id="c1",
                        recipients=[keys.public("alice")], version=version)  # fmt: skip
    message: dict[str, Any] = {"message_id": "m1", "seq": 1, "created_at": "now"}
    message.update(env.model_dump(mode="json"))
    # read as the client reads history: the protocol's model, re-serialised for the signature check
    view = asyncio.run(render(cast(Any, None), messenger, MessageView.model_validate(message), "c1"))
    assert view["key_committing"] is (not marked)
    assert _line(view) == "#1 me: hi" + (" [not key-committing]" if marked else "")
