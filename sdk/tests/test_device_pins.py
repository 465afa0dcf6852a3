"""Device pinning without a server: first sight pins, a new device is never pinned by itself and
blocks sealing, a removed one is dropped, the own account is pinned too."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chainchat.crypto import DeviceKeys
from chainchat.devices import DevicePins, KeyProofInvalid, UnconfirmedDevices, key_digest, key_status_offline
from chainchat.messenger import Messenger
from chainchat_protocol.keys_directory import DeviceKey
from chainchat_protocol.proof import ProofObject


def test_first_sight_pins_then_new_devices_wait_and_removed_ones_go() -> None:
    store: dict[str, list[str]] = {}
    pins = DevicePins(store)
    assert pins.observe("bob", {"k1", "k2"}) is None
    assert store["bob"] == ["k1", "k2"]
    change = pins.observe("bob", {"k1", "k2", "k3"})
    assert change is not None
    assert change.added == {"k3"}
    assert store["bob"] == ["k1", "k2"]  # never re-pinned by itself
    assert pins.unconfirmed("bob", {"k1", "k2", "k3"}) == {"k3"}
    change = pins.observe("bob", {"k2", "k3"})
    assert change is not None
    assert change.removed == {"k1"}
    assert store["bob"] == ["k2"]
    pins.confirm("bob", {"k2", "k3"})
    assert pins.unconfirmed("bob", {"k2", "k3"}) == set()
    # a rotation: every pinned device gone, a new one published — still needs confirming
    change = pins.observe("bob", {"k9"})
    assert change is not None
    assert change.added == {"k9"}
    assert store["bob"] == []
    assert pins.unconfirmed("bob", {"k9"}) == {"k9"}
    assert pins.observe("bob", {"k9"}) is not None


def _messenger(store: dict[str, list[str]]) -> tuple[Messenger, list[Any]]:
    me = DeviceKeys.generate()
    warned: list[Any] = []
    messenger = Messenger(None, "alice", me, store, on_key_change=lambda *a: warned.append(a))  # type: ignore[arg-type]
    return messenger, warned


def test_seal_refuses_unconfirmed_devices_own_account_included() -> None:
    store: dict[str, list[str]] = {}
    messenger, warned = _messenger(store)
    bob1, bob2, mine2 = (DeviceKeys.generate() for _ in range(3))
    own = messenger.device.public("alice")
    first = [own, bob1.public("bob")]
    messenger.seal("c1", {"type": "text", "text": "hi"}, first)  # first sight: pinned
    assert store == {"alice": [own.key_id], "bob": [bob1.key_id]}
    messenger._keys["bob"] = [bob1.public("bob"), bob2.public("bob")]
    messenger._check_pins("bob", {bob1.key_id, bob2.key_id})
    assert warned
    assert warned[-1][0] == "bob"
    with pytest.raises(UnconfirmedDevices) as refused:
        messenger.seal("c1", {"type": "text", "text": "hi"}, [*first, bob2.public("bob")])
    assert refused.value.devices == {"bob": [bob2.key_id]}
    assert "chainchat keys confirm bob" in str(refused.value)
    assert store["bob"] == [bob1.key_id]
    # a device added to my own account is held back the same way
    with pytest.raises(UnconfirmedDevices) as own_new:
        messenger.seal("c1", {"type": "text", "text": "hi"}, [*first, mine2.public("alice")])
    assert own_new.value.devices == {"alice": [mine2.key_id]}


def test_seal_refuses_a_key_whose_log_proof_fails() -> None:
    messenger, _ = _messenger({})
    bob = DeviceKeys.generate().public("bob")
    messenger.key_status[bob.key_id] = ("invalid", "the logged digest is not this key's")
    with pytest.raises(KeyProofInvalid, match="digest"):
        messenger.seal("c1", {"type": "text", "text": "hi"}, [bob])


def test_key_proof_status_checks_kind_id_and_digest() -> None:
    keys = DeviceKeys.generate()
    key = DeviceKey(key_id=keys.key_id, created_at=datetime.now(UTC), **keys.publish_body([]))

    def pending(entry: dict[str, Any] | None) -> ProofObject:
        return ProofObject.model_validate({"status": "pending", "entry": entry})

    assert key_status_offline("bob", key, None)[0] == "pending"
    assert key_status_offline("bob", key, pending(None))[0] == "pending"
    entry = {"kind": "key", "id": keys.key_id, "digest": key_digest("bob", key), "at": "2026-01-01T00:00:00Z"}
    assert key_status_offline("bob", key, pending(entry))[0] == "pending"
    other = {**entry, "kind": "tombstone"}
    assert key_status_offline("bob", key, pending(other))[0] == "invalid"
    assert key_status_offline("mallory", key, pending(entry))[0] == "invalid"
