import copy
import json
from typing import Any

import pytest

from chainchat.crypto.envelope import (
    SealRandomness,
    open_envelope,
    open_envelope_detailed,
    seal_envelope,
)
from chainchat.crypto.errors import CryptoError, EnvelopeError
from chainchat.crypto.keys import DeviceKeys, PublicDeviceKey
from chainchat_protocol.b64 import b64d, b64e
from chainchat_protocol.envelope import SUITES, Envelope
from chainchat_protocol.vectors import load

BODY = {"type": "text", "text": "hi 👋", "sent_at": "2025-01-01T00:00:00.000Z"}


def _dev(d: dict[str, str]) -> DeviceKeys:
    return DeviceKeys(bytes.fromhex(d["x25519_private_hex"]), bytes.fromhex(d["ed25519_private_hex"]))


@pytest.mark.parametrize(
    "name", ["envelope_aes256gcm", "envelope_blowfish", "envelope_v2_aes256gcm", "envelope_v2_blowfish"]
)
def test_vector_seal_is_deterministic_and_opens(name: str) -> None:
    v = load(name)
    version = v["envelope"]["v"]
    sender = _dev(v["sender"]["device"])
    recips = [(r["user_id"], _dev(r["device"])) for r in v["recipients"]]
    rnd = SealRandomness(
        bytes.fromhex(v["content_key_hex"]),
        bytes.fromhex(v["nonce_hex"]),
        [bytes.fromhex(r["ephemeral_ikm_hex"]) for r in v["recipients"]],
    )
    env = seal_envelope(
        v["body"], sender=sender, sender_id="alice", conversation_id="conv-1",
        recipients=[k.public(u) for u, k in recips], suite=v["suite"], version=version,
        randomness=rnd,
    )  # fmt: skip
    assert env.model_dump(mode="json") == v["envelope"]
    for user, keys in recips:
        opened = open_envelope_detailed(v["envelope"], device=keys, user_id=user,
                                        sender=sender.public("alice"))  # fmt: skip
        assert opened.body == v["body"]
        assert (opened.version, opened.key_committing) == (version, version == 2)


class Party:
    def __init__(self, user_id: str) -> None:
        self.user_id, self.keys = user_id, DeviceKeys.generate()

    @property
    def public(self) -> PublicDeviceKey:
        return self.keys.public(self.user_id)


@pytest.fixture
def alice() -> Party:
    return Party("alice")


@pytest.fixture
def bob() -> Party:
    return Party("bob")


def _seal(alice: Party, bob: Party, suite: str, body: dict[str, Any] = BODY) -> Envelope:
    return seal_envelope(body, sender=alice.keys, sender_id="alice", conversation_id="c1",
                         recipients=[bob.public, alice.public], suite=suite)  # fmt: skip


def _open(env: Any, who: Party, sender: Party) -> dict[str, Any]:
    return open_envelope(env, device=who.keys, user_id=who.user_id, sender=sender.public)


@pytest.mark.parametrize("suite", SUITES)
def test_roundtrip_both_parties(alice: Party, bob: Party, suite: str) -> None:
    env = _seal(alice, bob, suite)
    assert _open(env, bob, alice) == BODY
    assert _open(env, alice, alice) == BODY  # the sender reads its own history
    assert _open(env.model_dump_json(), bob, alice) == BODY
    assert env.ciphertext != _seal(alice, bob, suite).ciphertext  # fresh key and nonce


def _code(env: Any, who: Party, sender: Party) -> str:
    with pytest.raises(EnvelopeError) as exc:
        _open(env, who, sender)
    assert isinstance(exc.value, CryptoError)
    return exc.value.code


def _tampered(env: Envelope, **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(env.model_dump(mode="json"))
    raw.update(changes)
    return raw


def _flip_b64(value: str, index: int = 0) -> str:
    data = bytearray(b64d(value))
    data[index] ^= 1
    return b64e(bytes(data))


@pytest.mark.parametrize("suite", SUITES)
def test_failures_have_codes(alice: Party, bob: Party, suite: str) -> None:
    env = _seal(alice, bob, suite)
    mallory = Party("mallory")
    assert _code(env, mallory, alice) == "not_a_recipient"
    assert _code(env, bob, mallory) == "bad_signature"  # wrong sender key
    assert _code(_tampered(env, ciphertext=_flip_b64(env.ciphertext)), bob, alice) == "bad_signature"
    assert _code(_tampered(env, signature=_flip_b64(env.signature)), bob, alice) == "bad_signature"
    assert _code(_tampered(env, suite="hpke-x25519-rot13"), bob, alice) == "unsupported_suite"
    assert _code(_tampered(env, v=3), bob, alice) == "unsupported_suite"
    assert _code(_tampered(env, v=1), bob, alice) == "malformed_envelope"  # v1 has no key_commit
    assert _code(_tampered(env, nonce="!!"), bob, alice) == "malformed_envelope"
    assert _code(b"not json", bob, alice) == "malformed_envelope"
    assert _code(b"[1]", bob, alice) == "malformed_envelope"


def _resign(raw: dict[str, Any], signer: Party) -> dict[str, Any]:
    from chainchat_protocol.envelope import signing_digest

    raw["signature"] = b64e(signer.keys.sign(signing_digest(raw)))
    return raw


@pytest.mark.parametrize("suite", SUITES)
def test_validly_signed_garbage_fails_decryption(alice: Party, bob: Party, suite: str) -> None:
    """A sender (or anyone holding the sender's key) cannot make a recipient accept corrupted
    content: the AEAD / HMAC and the HPKE wrap catch it after the signature passes."""
    env = _seal(alice, bob, suite)
    bad_ct = _resign(_tampered(env, ciphertext=_flip_b64(env.ciphertext)), alice)
    assert _code(bad_ct, bob, alice) == "decryption_failed"
    bad_tag = _resign(_tampered(env, ciphertext=_flip_b64(env.ciphertext, -1)), alice)
    assert _code(bad_tag, bob, alice) == "decryption_failed"
    raw = _tampered(env)
    raw["recipients"][0]["wrapped_key"] = _flip_b64(raw["recipients"][0]["wrapped_key"])
    assert _code(_resign(raw, alice), bob, alice) == "decryption_failed"
    # A wrap moved into another conversation fails even with a valid signature (header AAD bound).
    moved = _resign(_tampered(env, conversation_id="c2"), alice)
    assert _code(moved, bob, alice) == "decryption_failed"


def test_seal_input_errors(alice: Party, bob: Party) -> None:
    with pytest.raises(EnvelopeError) as exc:
        _seal(alice, bob, "hpke-x25519-rot13")
    assert exc.value.code == "unsupported_suite"
    with pytest.raises(ValueError, match="type"):
        _seal(alice, bob, SUITES[0], body={"text": "no type"})
    with pytest.raises(EnvelopeError) as exc:
        _seal(alice, bob, SUITES[0], body={"type": "text", "text": "x" * 70000})
    assert exc.value.code == "envelope_too_large"
    with pytest.raises(ValueError, match="duplicate"):
        seal_envelope(BODY, sender=alice.keys, sender_id="alice", conversation_id="c1",
                      recipients=[bob.public, bob.public])  # fmt: skip


def test_file_body_roundtrip(alice: Party, bob: Party) -> None:
    body = {"type": "file", "file": {"file_id": "f1", "cid": "bafy", "key": b64e(b"k" * 32),
            "name": "a.txt", "mime": "text/plain", "size": 3, "sha256": "00" * 32},
            "sent_at": "2025-01-01T00:00:00.000Z"}  # fmt: skip
    assert _open(_seal(alice, bob, SUITES[1], body), bob, alice) == json.loads(json.dumps(body))
