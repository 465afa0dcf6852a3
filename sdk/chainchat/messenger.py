"""High-level messaging on top of :class:`~chainchat.client.Client`: seal to every member device,
open what arrives, pin peers' keys and report key changes.

    messenger = Messenger(client, user_id, device_keys, pins)
    sent = await messenger.send_text(conversation_id, "hello")
    for message in await client.history(conversation_id):
        body = await messenger.open(message, conversation_id=conversation_id)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chainchat.client import JSON, ApiError, Client
from chainchat.crypto import (
    CryptoError,
    DeviceKeys,
    EnvelopeError,
    OpenedEnvelope,
    PublicDeviceKey,
    open_envelope_detailed,
    seal_envelope,
)
from chainchat_protocol.envelope import ENVELOPE_FIELDS, SUITE_AES256GCM


class WrongConversation(CryptoError):
    """A message whose signed header names another conversation than the one it is shown in."""

    code = "wrong_conversation"


KeyChangeListener = Callable[[str, set[str], set[str]], None]


@dataclass
class Messenger:
    """One device of one user. ``pins`` maps a peer's user id to the key ids last seen for it."""

    client: Client
    user_id: str
    device: DeviceKeys
    pins: MutableMapping[str, list[str]] = field(default_factory=dict)
    on_key_change: KeyChangeListener | None = None
    suite: str = SUITE_AES256GCM
    _keys: dict[str, list[PublicDeviceKey]] = field(default_factory=dict)
    _members: dict[str, list[str]] = field(default_factory=dict)

    async def devices_of(self, user_id: str, *, refresh: bool = False) -> list[PublicDeviceKey]:
        """The published device keys of ``user_id``; a change from the pinned set is reported."""
        if refresh or user_id not in self._keys:
            directory = await self.client.get_keys(user_id)
            keys = [
                PublicDeviceKey.from_b64(user_id, k["x25519_public"], k["ed25519_public"])
                for k in directory.get("keys", [])
            ]
            self._keys[user_id] = keys
            self._check_pins(user_id, {k.key_id for k in keys})
        return self._keys[user_id]

    def _check_pins(self, user_id: str, current: set[str]) -> None:
        if user_id == self.user_id:
            return
        pinned = set(self.pins.get(user_id, []))
        if pinned and pinned != current and self.on_key_change is not None:
            self.on_key_change(user_id, pinned, current)
        self.pins[user_id] = sorted(current)

    async def members_of(self, conversation_id: str, *, refresh: bool = False) -> list[str]:
        if refresh or conversation_id not in self._members:
            for conv in await self.client.list_conversations():
                self._members[conv["conversation_id"]] = list(conv["members"])
        if conversation_id not in self._members:
            raise ApiError(404, "conversation_not_found", "no such conversation")
        return self._members[conversation_id]

    async def recipients(self, conversation_id: str, *, refresh: bool = False) -> list[PublicDeviceKey]:
        devices: list[PublicDeviceKey] = []
        for member in await self.members_of(conversation_id, refresh=refresh):
            devices += await self.devices_of(member, refresh=refresh)
        if not any(d.key_id == self.device.key_id for d in devices):
            devices.append(self.device.public(self.user_id))
        return devices

    def seal(self, conversation_id: str, body: JSON, recipients: list[PublicDeviceKey]) -> JSON:
        envelope = seal_envelope(
            body,
            sender=self.device,
            sender_id=self.user_id,
            conversation_id=conversation_id,
            recipients=recipients,
            suite=self.suite,
        )
        return envelope.model_dump(mode="json")

    async def send(self, conversation_id: str, body: JSON, *, file_ids: list[str] | None = None) -> JSON:
        """Seal ``body`` to every current member device and post it (retried once if membership or
        keys changed meanwhile: the server answers 422 when a member device is missing)."""
        client_id = uuid.uuid4().hex
        for attempt in range(2):
            envelope = self.seal(
                conversation_id, body, await self.recipients(conversation_id, refresh=attempt > 0)
            )
            try:
                return await self.client.send_envelope(conversation_id, envelope, client_id, file_ids)
            except ApiError as exc:
                if exc.status != 422 or attempt:
                    raise
        raise AssertionError("unreachable")

    async def send_text(self, conversation_id: str, text: str) -> JSON:
        return await self.send(conversation_id, {"type": "text", "text": text, "sent_at": _now()})

    async def open(self, message: JSON, *, conversation_id: str) -> JSON:
        """Verify and decrypt a stored/delivered message shown in ``conversation_id``.

        Raises ``WrongConversation`` when the signed header names another conversation (a message
        spliced in from elsewhere), ``EnvelopeError`` on any other failure.
        """
        return (await self.open_detailed(message, conversation_id=conversation_id)).body

    async def open_detailed(self, message: JSON, *, conversation_id: str) -> OpenedEnvelope:
        """:meth:`open`, also telling the envelope version and whether it was key-committing (v2)."""
        if message.get("conversation_id") != conversation_id:
            raise WrongConversation(
                f"this message belongs to conversation {message.get('conversation_id')!r}, "
                f"not to {conversation_id!r}: it was moved here"
            )
        sender_id = message["sender_id"]
        sender = await self._sender_key(sender_id, message["sender_key_id"])
        return open_envelope_detailed(
            envelope_fields(message), device=self.device, user_id=self.user_id, sender=sender
        )

    async def _sender_key(self, sender_id: str, key_id: str) -> PublicDeviceKey:
        if sender_id == self.user_id and key_id == self.device.key_id:
            return self.device.public(self.user_id)
        for refresh in (False, True):
            for key in await self.devices_of(sender_id, refresh=refresh):
                if key.key_id == key_id:
                    return key
        raise EnvelopeError("bad_signature", "the sender's key is not in the directory")


def envelope_fields(message: JSON) -> dict[str, Any]:
    """The envelope part of a stored message (server metadata removed)."""
    return {k: message[k] for k in ENVELOPE_FIELDS if k in message}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
