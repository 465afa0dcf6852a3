"""Trust in other devices (SPEC §11): which device keys of an account this client has confirmed,
and what the transparency log says about each key.

Pinning. The client remembers, for every account it talks to — its own included — the device key
ids it has confirmed. The first time it sees an account it trusts the devices it finds (trust on
first use, as Signal and WhatsApp do). After that a device it has not seen before is *unconfirmed*:
nothing is sealed to it until the user confirms it (`chainchat keys confirm <user>`), so a device
that a stolen token or a malicious server adds is shown before it can read anything. A device
that disappears (revoked) is dropped from the pin and reported: sealing to fewer devices reveals
nothing.

The log. Each device key has a ``key`` entry in the transparency log; the directory hands out its
proof. A key is ``anchored`` (inclusion proven under a head anchored on the pinned ledger and
consistent with every head seen before), ``logged`` (inclusion proven under the ledger's current
head, not anchored yet — or the chain could not be asked), ``pending`` (the ledger has not
appended it yet) or ``invalid`` (the proof is for another entry or key, does not reach its
root, or names another ledger). Invalid keys are refused; pending and logged keys are used and
shown as such: the ledger lags a few seconds behind a new device, and refusing them would make
the ledger a single point of failure for messaging, while the pin already stops a silent device.
"""

from __future__ import annotations

from collections.abc import Collection, MutableMapping
from dataclasses import dataclass
from typing import Literal

from chainchat.crypto import CryptoError
from chainchat_protocol.keys_directory import DeviceKey
from chainchat_protocol.log_entry import digest_object
from chainchat_protocol.proof import ProofObject, verify_proof_offline

__all__ = [
    "DevicePins",
    "KeyProofInvalid",
    "KeyStatus",
    "PinChange",
    "UnconfirmedDevices",
    "key_digest",
    "key_status_offline",
]

KeyStatus = Literal["anchored", "logged", "pending", "invalid"]


class UnconfirmedDevices(CryptoError):
    """Sealing refused: the recipients include devices the user has not confirmed.
    ``devices`` maps each account to its unconfirmed key ids."""

    code = "unconfirmed_devices"

    def __init__(self, devices: dict[str, list[str]]) -> None:
        self.devices = {user: sorted(keys) for user, keys in sorted(devices.items())}
        listed = "; ".join(f"user {u}: {', '.join(k)}" for u, k in self.devices.items())
        users = " ".join(self.devices)
        super().__init__(
            f"new devices not confirmed yet ({listed}); check them (`chainchat keys devices`, "
            f"`chainchat safety-number`), then `chainchat keys confirm {users}`"
        )


class KeyProofInvalid(CryptoError):
    """Sealing (or trusting a signature) refused: a key's transparency-log proof does not verify."""

    code = "key_proof_invalid"

    def __init__(self, user_id: str, key_id: str, reason: str) -> None:
        self.user_id, self.key_id, self.reason = user_id, key_id, reason
        super().__init__(f"the log proof of key {key_id} of user {user_id} does not verify: {reason}")


@dataclass(frozen=True)
class PinChange:
    user_id: str
    added: frozenset[str]
    removed: frozenset[str]


class DevicePins:
    """Confirmed key ids per account in ``store`` (a mapping persisted by the caller)."""

    def __init__(self, store: MutableMapping[str, list[str]]) -> None:
        self.store = store

    def observe(
        self, user_id: str, current: Collection[str], *, own: Collection[str] = ()
    ) -> PinChange | None:
        """Compare the published ``current`` keys with the pin: pin on first sight, drop removed
        keys, never add one (``own``: this device's key, always confirmed). Returns the change."""
        now, always = set(current), set(own)
        stored = self.store.get(user_id)
        if stored is None:  # never seen (an account whose devices were all removed stays pinned)
            if now or always:
                self.store[user_id] = sorted(now | always)
            return None
        pinned = set(stored)
        removed = pinned - now - always
        if removed:
            self.store[user_id] = sorted(pinned - removed)
        added = now - pinned - always
        if not (added or removed):
            return None
        return PinChange(user_id, frozenset(added), frozenset(removed))

    def unconfirmed(self, user_id: str, current: Collection[str], *, own: Collection[str] = ()) -> set[str]:
        if user_id not in self.store:
            return set()  # first sight: pinned as it is
        return set(current) - set(self.store[user_id]) - set(own)

    def confirm(self, user_id: str, current: Collection[str]) -> None:
        """The user checked the devices: pin exactly ``current``."""
        self.store[user_id] = sorted(set(current))


def key_digest(user_id: str, key: DeviceKey) -> str:
    """The digest a device key's ``key`` log entry must carry (what auth logs)."""
    return digest_object(
        {
            "user_id": user_id,
            "key_id": key.key_id,
            "x25519_public": key.x25519_public,
            "ed25519_public": key.ed25519_public,
        }
    )


def key_status_offline(user_id: str, key: DeviceKey, parsed: ProofObject | None) -> tuple[KeyStatus, str]:
    """What a key's proof shows without a chain; ``anchored`` still needs the on-chain check.
    (A malformed proof never gets here: the client refuses the directory answer that holds it.)"""
    if parsed is None:
        return "pending", "no proof yet"
    entry = parsed.entry
    if entry is None:
        return "pending", "the ledger has not received the key entry yet"
    if (entry.kind, entry.id) != ("key", key.key_id):
        return "invalid", f"the proof is of {entry.kind} {entry.id}, not of this key"
    if entry.digest != key_digest(user_id, key):
        return "invalid", "the logged digest is not this key's"
    check = verify_proof_offline(parsed)
    if parsed.leaf_index is None:
        return "pending", "not in the log yet"
    if not check.ok:
        return "invalid", check.reason or "inclusion proof fails"
    return ("anchored" if parsed.status == "anchored" else "logged"), "inclusion proven"
