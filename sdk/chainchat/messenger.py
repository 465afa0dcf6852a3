"""High-level messaging on top of :class:`~chainchat.client.Client`: seal to every member device,
open what arrives, pin every account's devices (own included) and check each key against the
transparency log (see :mod:`chainchat.devices` for the rules).

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
from chainchat.devices import DevicePins, KeyProofInvalid, KeyStatus, UnconfirmedDevices, key_status_offline
from chainchat.verifier import LedgerVerifier
from chainchat_protocol.chat import MessageView, SendResult
from chainchat_protocol.envelope import ENVELOPE_FIELDS, SUITE_AES256GCM
from chainchat_protocol.keys_directory import DeviceKey
from chainchat_protocol.proof import ProofObject

__all__ = ["KeyProofInvalid", "Messenger", "UnconfirmedDevices", "WrongConversation", "envelope_fields"]


class WrongConversation(CryptoError):
    """A message whose signed header names another conversation than the one it is shown in."""

    code = "wrong_conversation"


KeyChangeListener = Callable[[str, set[str], set[str]], None]


@dataclass
class Messenger:
    """One device of one user. ``pins`` maps every account's user id (this one's too) to the key
    ids confirmed for it; ``verifier`` checks anchored key proofs on the pinned ledger."""

    client: Client
    user_id: str
    device: DeviceKeys
    pins: MutableMapping[str, list[str]] = field(default_factory=dict)
    on_key_change: KeyChangeListener | None = None
    suite: str = SUITE_AES256GCM
    verifier: LedgerVerifier | None = None
    #: key id → (log status, why), for every key fetched
    key_status: dict[str, tuple[KeyStatus, str]] = field(default_factory=dict)
    _keys: dict[str, list[PublicDeviceKey]] = field(default_factory=dict)
    _members: dict[str, list[str]] = field(default_factory=dict)

    @property
    def device_pins(self) -> DevicePins:
        return DevicePins(self.pins)

    async def devices_of(self, user_id: str, *, refresh: bool = False) -> list[PublicDeviceKey]:
        """The published device keys of ``user_id``, each checked against the log; a change from
        the confirmed set is reported (never confirmed here)."""
        if refresh or user_id not in self._keys:
            directory = await self.client.get_keys(user_id)
            keys = []
            for k in directory.keys:
                key = PublicDeviceKey.from_b64(user_id, k.x25519_public, k.ed25519_public)
                if key.key_id != k.key_id:
                    continue  # a key whose id does not match its bytes is never used
                self.key_status[key.key_id] = await self._log_status(
                    user_id, k, directory.proofs.get(key.key_id)
                )
                keys.append(key)
            self._keys[user_id] = keys
            self._check_pins(user_id, {k.key_id for k in keys})
        return self._keys[user_id]

    async def _log_status(
        self, user_id: str, key: DeviceKey, proof: ProofObject | None
    ) -> tuple[KeyStatus, str]:
        status, reason = key_status_offline(user_id, key, proof)
        if status != "anchored":
            return status, reason
        if self.verifier is None:
            return "logged", "inclusion proven; not checked on chain (no ledger pinned)"
        assert proof is not None
        result = await self.verifier.verify(self.client, proof, expect=("key", key.key_id))
        if result.valid:
            return "anchored", "anchored on the pinned ledger"
        if result.code == "chain_unreachable":
            return "logged", f"inclusion proven; the chain could not be asked ({result.reason})"
        return "invalid", result.reason or "the on-chain check failed"

    def _own(self, user_id: str) -> set[str]:
        return {self.device.key_id} if user_id == self.user_id else set()

    def _check_pins(self, user_id: str, current: set[str]) -> None:
        before = set(self.pins.get(user_id) or [])
        change = self.device_pins.observe(user_id, current, own=self._own(user_id))
        if change is not None and self.on_key_change is not None:
            self.on_key_change(user_id, before, current)

    def unconfirmed(self, user_ids: list[str] | None = None) -> dict[str, list[str]]:
        """Devices fetched but not confirmed, per account (of ``user_ids``, or all fetched)."""
        found: dict[str, list[str]] = {}
        for user in user_ids if user_ids is not None else list(self._keys):
            current = {k.key_id for k in self._keys.get(user, [])}
            new = self.device_pins.unconfirmed(user, current, own=self._own(user))
            if new:
                found[user] = sorted(new)
        return found

    async def confirm(self, user_id: str) -> list[str]:
        """The user checked ``user_id``'s devices: confirm the ones published now. Returns the
        key ids that were not confirmed before."""
        keys = {k.key_id for k in await self.devices_of(user_id, refresh=True)} | self._own(user_id)
        new = sorted(self.device_pins.unconfirmed(user_id, keys))
        self.device_pins.confirm(user_id, keys)
        return new

    def check_recipients(self, recipients: list[PublicDeviceKey]) -> None:
        """Refuse keys whose log proof failed (:class:`KeyProofInvalid`) and devices not confirmed
        (:class:`UnconfirmedDevices`); an account never seen before is pinned as it is now."""
        by_user: dict[str, set[str]] = {}
        for r in recipients:
            status, reason = self.key_status.get(r.key_id, ("pending", "not fetched"))
            if status == "invalid" and r.key_id not in self._own(r.user_id):
                raise KeyProofInvalid(r.user_id, r.key_id, reason)
            by_user.setdefault(r.user_id, set()).add(r.key_id)
        unconfirmed: dict[str, list[str]] = {}
        for user, keys in by_user.items():
            if user not in self.pins:
                self.device_pins.observe(user, keys, own=self._own(user))
            new = self.device_pins.unconfirmed(user, keys, own=self._own(user))
            if new:
                unconfirmed[user] = sorted(new)
        if unconfirmed:
            raise UnconfirmedDevices(unconfirmed)

    def not_yet_anchored(self, recipients: list[PublicDeviceKey]) -> list[tuple[PublicDeviceKey, str]]:
        """Recipients whose key is pending or logged but not anchored (shown, still used)."""
        return [
            (r, self.key_status[r.key_id][0])
            for r in recipients
            if r.key_id in self.key_status and self.key_status[r.key_id][0] in ("pending", "logged")
        ]

    async def members_of(self, conversation_id: str, *, refresh: bool = False) -> list[str]:
        if refresh or conversation_id not in self._members:
            for conv in await self.client.list_conversations():
                self._members[conv.conversation_id] = list(conv.members)
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
        """Seal ``body`` to ``recipients`` after :meth:`check_recipients` (raises
        :class:`UnconfirmedDevices` or :class:`KeyProofInvalid`, nothing sealed)."""
        self.check_recipients(recipients)
        envelope = seal_envelope(
            body,
            sender=self.device,
            sender_id=self.user_id,
            conversation_id=conversation_id,
            recipients=recipients,
            suite=self.suite,
        )
        return envelope.model_dump(mode="json")

    async def send(
        self,
        conversation_id: str,
        body: JSON,
        *,
        file_ids: list[str] | None = None,
        accept_new_devices: bool = False,
    ) -> SendResult:
        """Seal ``body`` to every current member device and post it (retried once if membership or
        keys changed meanwhile: the server answers 422 when a member device is missing).
        ``accept_new_devices`` confirms unconfirmed devices first (the user said so)."""
        client_id = uuid.uuid4().hex
        for attempt in range(2):
            recipients = await self.recipients(conversation_id, refresh=attempt > 0)
            if accept_new_devices:
                for user in self.unconfirmed(sorted({r.user_id for r in recipients})):
                    self.device_pins.confirm(user, {k.key_id for k in self._keys[user]} | self._own(user))
            envelope = self.seal(conversation_id, body, recipients)
            try:
                return await self.client.send_envelope(conversation_id, envelope, client_id, file_ids)
            except ApiError as exc:
                if exc.status != 422 or attempt:
                    raise
        raise AssertionError("unreachable")

    async def send_text(
        self, conversation_id: str, text: str, *, accept_new_devices: bool = False
    ) -> SendResult:
        body = {"type": "text", "text": text, "sent_at": _now()}
        return await self.send(conversation_id, body, accept_new_devices=accept_new_devices)

    async def open(self, message: MessageView | JSON, *, conversation_id: str) -> JSON:
        """Verify and decrypt a stored message (from history) or a delivered one (the WebSocket
        frame's ``message``) shown in ``conversation_id``.

        Raises ``WrongConversation`` when the signed header names another conversation (a message
        spliced in from elsewhere), ``EnvelopeError`` on any other failure.
        """
        return (await self.open_detailed(message, conversation_id=conversation_id)).body

    async def open_detailed(self, message: MessageView | JSON, *, conversation_id: str) -> OpenedEnvelope:
        """:meth:`open`, also telling the envelope version and whether it was key-committing (v2)."""
        if isinstance(message, MessageView):
            message = message.wire()
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
                if key.key_id != key_id:
                    continue
                status, reason = self.key_status.get(key_id, ("pending", ""))
                if status == "invalid":
                    why = f"the sender's key is not proven by the log: {reason}"
                    raise EnvelopeError("bad_signature", why)
                return key
        raise EnvelopeError("bad_signature", "the sender's key is not in the directory")


def envelope_fields(message: JSON) -> dict[str, Any]:
    """The envelope part of a stored message (server metadata removed)."""
    return {k: message[k] for k in ENVELOPE_FIELDS if k in message}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
