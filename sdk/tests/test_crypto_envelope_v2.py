"""Envelope v2: key commitment (issue 21.1), the header bound through the HPKE ``info``, and v1
envelopes still opening, flagged as not key-committing."""

from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

from chainchat.crypto.envelope import (
    SealRandomness,
    key_commitment,
    open_envelope_detailed,
    seal_envelope,
    wrap_key,
)
from chainchat.crypto.errors import EnvelopeError
from chainchat.crypto.keys import DeviceKeys
from chainchat_protocol.b64 import b64d, b64e
from chainchat_protocol.envelope import SUITE_AES256GCM, SUITES, Envelope, signing_digest, wrap_info
from chainchat_protocol.vectors import load

BODY = {"type": "text", "text": "meet at noon", "sent_at": "2025-01-01T00:00:00.000Z"}


class Party:
    def __init__(self, user_id: str) -> None:
        self.user_id, self.keys = user_id, DeviceKeys.generate()
        self.public = self.keys.public(user_id)


ALICE, BOB = Party("alice"), Party("bob")


def _seal(suite: str = SUITE_AES256GCM, **kw: Any) -> Envelope:
    return seal_envelope(BODY, sender=ALICE.keys, sender_id="alice", conversation_id="c1",
                         recipients=[BOB.public, ALICE.public], suite=suite, **kw)  # fmt: skip


def _open(env: Any, who: Party = BOB) -> Any:
    return open_envelope_detailed(env, device=who.keys, user_id=who.user_id, sender=ALICE.public)


def _code(env: Any, who: Party = BOB) -> str:
    with pytest.raises(EnvelopeError) as exc:
        _open(env, who)
    return exc.value.code


def _signed(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` signed by alice: what a malicious sender can produce."""
    raw = {k: v for k, v in raw.items() if k != "signature"}
    return {**raw, "signature": b64e(ALICE.keys.sign(signing_digest(raw)))}


@pytest.mark.parametrize("suite", SUITES)
def test_senders_produce_key_committing_v2(suite: str) -> None:
    env = _seal(suite)
    assert env.v == 2
    assert env.key_commit is not None
    assert len(b64d(env.key_commit)) == 32
    for who in (BOB, ALICE):
        opened = _open(env, who)
        assert (opened.body, opened.version, opened.key_committing) == (BODY, 2, True)


@pytest.mark.parametrize("suite", SUITES)
def test_v1_still_opens_flagged_not_key_committing(suite: str) -> None:
    env = _seal(suite, version=1)
    assert env.v == 1
    assert "key_commit" not in env.model_dump(mode="json")
    opened = _open(env)
    assert (opened.body, opened.version, opened.key_committing) == (BODY, 1, False)


@pytest.mark.parametrize("suite", SUITES)
def test_tampered_key_commit_is_rejected(suite: str) -> None:
    raw = _seal(suite).model_dump(mode="json")
    flipped = bytearray(b64d(raw["key_commit"]))
    flipped[0] ^= 1
    tampered = {**raw, "key_commit": b64e(bytes(flipped))}
    assert _code(tampered) == "bad_signature"  # in transit: the signature covers key_commit
    assert _code(_signed(tampered)) == "bad_key_commit"  # by the sender itself
    assert _code(_signed({k: v for k, v in raw.items() if k != "key_commit"})) == "malformed_envelope"


@pytest.mark.parametrize("suite", SUITES)
def test_invisible_salamander_is_rejected(suite: str) -> None:
    """One signed envelope, two content keys: bob's wrap carries K' != K. Without the commitment a
    recipient cannot tell (AES-GCM is not key-committing); with it bob refuses before decrypting,
    while alice, whose wrap carries the committed K, reads it."""
    raw = _seal(suite).model_dump(mode="json")
    other = AESGCM.generate_key(bit_length=256)
    raw["recipients"][0] = wrap_key(BOB.public, other, raw).model_dump()
    forged = _signed(raw)
    assert _code(forged) == "bad_key_commit"
    assert _open(forged, ALICE).body == BODY
    # the check is what rejects it: a commitment to K' makes bob accept K' (and alice refuse)
    forged_for_bob = _signed({**raw, "key_commit": b64e(key_commitment(other, b64d(raw["nonce"])))})
    assert _code(forged_for_bob, ALICE) == "bad_key_commit"
    assert _code(forged_for_bob) == "decryption_failed"  # K' does not decrypt the content


@pytest.mark.parametrize("name", ["envelope_v2_aes256gcm", "envelope_v2_blowfish"])
def test_salamander_vector(name: str) -> None:
    v = load(name)["salamander"]
    devices = {r["user_id"]: r["device"] for r in load(name)["recipients"]}
    sender = DeviceKeys(*(bytes.fromhex(load(name)["sender"]["device"][k])
                          for k in ("x25519_private_hex", "ed25519_private_hex")))  # fmt: skip

    def opener(user: str) -> Any:
        d = devices[user]
        keys = DeviceKeys(bytes.fromhex(d["x25519_private_hex"]), bytes.fromhex(d["ed25519_private_hex"]))
        return lambda: open_envelope_detailed(v["envelope"], device=keys, user_id=user,
                                              sender=sender.public("alice"))  # fmt: skip

    with pytest.raises(EnvelopeError) as exc:
        opener(v["rejected_by"]["user_id"])()
    assert exc.value.code == v["rejected_by"]["code"]
    assert opener(v["opened_by"]["user_id"])().body == load(name)["body"]


def test_wraps_are_bound_to_version_and_header() -> None:
    raw = _seal().model_dump(mode="json")
    # a v2 wrap read as v1 (other info, header as aad) does not unwrap, even signed by the sender
    downgraded = _signed({**{k: v for k, v in raw.items() if k != "key_commit"}, "v": 1})
    assert _code(downgraded) == "decryption_failed"
    moved = _signed({**raw, "conversation_id": "c2"})
    assert _code(moved) == "decryption_failed"
    assert wrap_info(raw) == b"chainchat/v2/wrap" + b'{"conversation_id":"c1","sender_id":"alice",' \
        + f'"sender_key_id":"{ALICE.keys.key_id}","suite":"{SUITE_AES256GCM}","v":2}}'.encode()  # fmt: skip


def test_cryptography_wrap_opens_with_pyhpke() -> None:
    """The fresh v2 wraps come from ``cryptography``'s HPKE; an independent implementation opens
    them with the documented parameters (info = wrap_info, empty aad)."""
    env = _seal()
    mine = env.recipients[0]
    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)
    ctx = suite.create_recipient_context(
        b64d(mine.enc), suite.kem.deserialize_private_key(BOB.keys.x25519_private), info=wrap_info(env)
    )
    content_key = ctx.open(b64d(mine.wrapped_key), b"")
    assert key_commitment(content_key, b64d(env.nonce)) == b64d(env.key_commit or "")


def test_injected_ephemeral_keys_are_deterministic() -> None:
    rnd = SealRandomness(b"k" * 32, b"n" * 12, [b"1" * 32, b"2" * 32])
    first, second = _seal(randomness=rnd), _seal(randomness=rnd)
    assert first == second
    assert _open(first).body == BODY
    assert _seal().recipients[0].enc != _seal().recipients[0].enc  # fresh ephemeral keys otherwise
    with pytest.raises(ValueError, match="randomness"):
        _seal(randomness=SealRandomness(b"k" * 32, b"n" * 12, [b"1" * 32]))
    with pytest.raises(EnvelopeError):
        _seal(version=3)
