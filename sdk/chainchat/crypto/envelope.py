"""Seal and open message envelopes v1 (SPEC §5).

Construction, both suites:

* A fresh random 32-byte content key ``K`` per message encrypts the body: the UTF-8 RFC 8785
  canonical JSON of ``{"type": ..., "text"|"file": ..., "sent_at": ...}``. The associated data
  ``AAD`` is the canonical JSON of the header ``{v, suite, conversation_id, sender_id,
  sender_key_id}`` (:func:`chainchat_protocol.envelope.header_aad`).
* ``K`` is wrapped to every recipient device with HPKE (RFC 9180) base mode,
  DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM, ``info = "chainchat/v1/wrap"`` and the
  same ``AAD`` as HPKE ``aad``. Binding the wrap to the header means a wrapped key cannot be lifted
  into an envelope with another conversation, sender or suite even before the signature is
  checked (defence in depth; the signature already covers everything). The ephemeral key is
  ``DeriveKeyPair(ikm)`` with 32 random bytes, which is RFC 9180's own ``GenerateKeyPair``; the
  ``ikm`` can be injected to produce the deterministic test vectors.
* ``hpke-x25519-aes256gcm``: ``ciphertext = AES-256-GCM(K, nonce[12], body, AAD)`` (ct || tag16).
* ``hpke-x25519-blowfish``: ``Ke = HKDF-SHA256(K, salt="", info="chainchat/v1/blowfish/enc", 32)``,
  ``Km = HKDF-SHA256(K, salt="", info="chainchat/v1/blowfish/mac", 32)``; Blowfish (256-bit key)
  in CTR mode whose 8-byte counter block is ``nonce[0:4] || uint32_be(uint32_be(nonce[4:8]) + i)``
  for block ``i`` (the sender picks ``nonce = 4 random bytes || 00000000``; the counter never
  wraps since an envelope is < 2**32 blocks); ``tag = HMAC-SHA256(Km, uint64_be(len(AAD)) || AAD
  || nonce || ct)`` (the length prefix keeps the AAD/ciphertext boundary unambiguous);
  ``ciphertext = ct || tag``. The tag is checked (constant time) before anything is decrypted.
* ``signature = Ed25519(sender, SHA-256(canonical JSON of the envelope without "signature"))``.

Opening checks, in order: structure and suite, signature against the sender's published key,
own recipient entry, key unwrap, content decryption. Each failure raises
:class:`~chainchat.crypto.errors.EnvelopeError` with a stable ``code``; no partial plaintext is
ever returned.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from Crypto.Cipher import Blowfish
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import ValidationError
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, PyHPKEError

from chainchat.crypto.errors import EnvelopeError
from chainchat.crypto.keys import DeviceKeys, PublicDeviceKey, verify_signature
from chainchat_protocol.b64 import b64d, b64e
from chainchat_protocol.canonical import CanonicalJSONError, canonical_json
from chainchat_protocol.envelope import (
    AES_GCM_NONCE_SIZE,
    HMAC_TAG_SIZE,
    SUITE_AES256GCM,
    SUITES,
    Envelope,
    Recipient,
    header_aad,
    signing_digest,
)

__all__ = [
    "HPKE_INFO",
    "SealRandomness",
    "blowfish_keys",
    "open_envelope",
    "seal_envelope",
]

HPKE_INFO = b"chainchat/v1/wrap"
BLOWFISH_ENC_INFO = b"chainchat/v1/blowfish/enc"
BLOWFISH_MAC_INFO = b"chainchat/v1/blowfish/mac"
CONTENT_KEY_SIZE = 32
_HPKE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)


@dataclass(frozen=True, slots=True)
class SealRandomness:
    """Every random input of :func:`seal_envelope`; injected only to pin test vectors."""

    content_key: bytes
    nonce: bytes
    ephemeral_ikm: Sequence[bytes]  # one 32-byte IKM per recipient, in recipient order

    @classmethod
    def fresh(cls, suite: str, recipients: int) -> SealRandomness:
        """Draw everything from the OS CSPRNG."""
        nonce = os.urandom(AES_GCM_NONCE_SIZE) if suite == SUITE_AES256GCM else os.urandom(4) + bytes(4)
        return cls(os.urandom(CONTENT_KEY_SIZE), nonce, [os.urandom(32) for _ in range(recipients)])


def blowfish_keys(content_key: bytes) -> tuple[bytes, bytes]:
    """The Blowfish-CTR encryption key and HMAC-SHA256 key derived from a content key."""

    def derive(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(content_key)

    return derive(BLOWFISH_ENC_INFO), derive(BLOWFISH_MAC_INFO)


def _blowfish_ctr(key: bytes, nonce: bytes, data: bytes) -> bytes:
    cipher = Blowfish.new(key, Blowfish.MODE_CTR, nonce=nonce[:4], initial_value=nonce[4:])
    out: bytes = cipher.encrypt(data)
    return out


def _blowfish_tag(mac_key: bytes, aad: bytes, nonce: bytes, ct: bytes) -> bytes:
    mac = hmac.new(mac_key, len(aad).to_bytes(8, "big"), sha256)
    for part in (aad, nonce, ct):
        mac.update(part)
    return mac.digest()


def _encrypt_content(suite: str, key: bytes, nonce: bytes, body: bytes, aad: bytes) -> bytes:
    if suite == SUITE_AES256GCM:
        return AESGCM(key).encrypt(nonce, body, aad)
    enc_key, mac_key = blowfish_keys(key)
    ct = _blowfish_ctr(enc_key, nonce, body)
    return ct + _blowfish_tag(mac_key, aad, nonce, ct)


def _decrypt_content(suite: str, key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    if suite == SUITE_AES256GCM:
        try:
            return AESGCM(key).decrypt(nonce, data, aad)
        except InvalidTag:
            raise EnvelopeError("decryption_failed", "content authentication failed") from None
    enc_key, mac_key = blowfish_keys(key)
    ct, tag = data[:-HMAC_TAG_SIZE], data[-HMAC_TAG_SIZE:]
    if not hmac.compare_digest(tag, _blowfish_tag(mac_key, aad, nonce, ct)):
        raise EnvelopeError("decryption_failed", "content authentication failed")
    return _blowfish_ctr(enc_key, nonce, ct)


def _wrap(recipient: PublicDeviceKey, key: bytes, ikm: bytes, aad: bytes) -> Recipient:
    pkr = _HPKE.kem.deserialize_public_key(recipient.x25519_public)
    enc, ctx = _HPKE.create_sender_context(pkr, info=HPKE_INFO, eks=_HPKE.kem.derive_key_pair(ikm))
    return Recipient(
        user_id=recipient.user_id,
        key_id=recipient.key_id,
        enc=b64e(enc),
        wrapped_key=b64e(ctx.seal(key, aad)),
    )


def _encode_body(body: Mapping[str, Any]) -> bytes:
    if not isinstance(body.get("type"), str):
        raise ValueError('message body needs a string "type"')
    return canonical_json(dict(body))


def seal_envelope(
    body: Mapping[str, Any],
    *,
    sender: DeviceKeys,
    sender_id: str,
    conversation_id: str,
    recipients: Sequence[PublicDeviceKey],
    suite: str = SUITE_AES256GCM,
    randomness: SealRandomness | None = None,
) -> Envelope:
    """Encrypt ``body`` for ``recipients`` (include the sender's own devices to read history) and
    sign it with ``sender``'s Ed25519 key. Raises ``ValueError`` for bad input and
    :class:`EnvelopeError` (``envelope_too_large`` / ``unsupported_suite``) otherwise."""
    if suite not in SUITES:
        raise EnvelopeError("unsupported_suite", f"unknown suite {suite!r}")
    rnd = randomness or SealRandomness.fresh(suite, len(recipients))
    if len(rnd.ephemeral_ikm) != len(recipients) or len(rnd.content_key) != CONTENT_KEY_SIZE:
        raise ValueError("randomness does not fit the recipients")
    header = {
        "v": 1,
        "suite": suite,
        "conversation_id": conversation_id,
        "sender_id": sender_id,
        "sender_key_id": sender.key_id,
    }
    aad = header_aad(header)
    ciphertext = _encrypt_content(suite, rnd.content_key, rnd.nonce, _encode_body(body), aad)
    unsigned: dict[str, Any] = {
        **header,
        "nonce": b64e(rnd.nonce),
        "ciphertext": b64e(ciphertext),
        "recipients": [
            _wrap(r, rnd.content_key, ikm, aad).model_dump()
            for r, ikm in zip(recipients, rnd.ephemeral_ikm, strict=True)
        ],
    }
    signature = sender.sign(signing_digest(unsigned))
    try:
        return Envelope.model_validate({**unsigned, "signature": b64e(signature)})
    except ValidationError as exc:
        if "larger than" in str(exc):
            raise EnvelopeError("envelope_too_large", "message too large for an envelope") from None
        raise ValueError(f"cannot build a valid envelope: {exc}") from exc


def _parse(envelope: Envelope | Mapping[str, Any] | str | bytes) -> Envelope:
    if isinstance(envelope, Envelope):
        return envelope
    try:
        obj = json.loads(envelope) if isinstance(envelope, str | bytes) else dict(envelope)
    except (ValueError, TypeError):
        raise EnvelopeError("malformed_envelope", "envelope is not a JSON object") from None
    if not isinstance(obj, dict):
        raise EnvelopeError("malformed_envelope", "envelope is not a JSON object")
    if obj.get("v") != 1 or obj.get("suite") not in SUITES:
        raise EnvelopeError("unsupported_suite", "unsupported envelope version or suite")
    try:
        return Envelope.model_validate(obj)
    except ValidationError:
        raise EnvelopeError("malformed_envelope", "envelope fails structural validation") from None


def open_envelope(
    envelope: Envelope | Mapping[str, Any] | str | bytes,
    *,
    device: DeviceKeys,
    user_id: str,
    sender: PublicDeviceKey,
) -> dict[str, Any]:
    """Verify and decrypt an envelope for ``device`` (owned by ``user_id``); return the body.

    ``sender`` is the sender device's *published* key (from the key directory, checked against the
    log); it must match the envelope's ``sender_id`` and ``sender_key_id``.
    """
    env = _parse(envelope)
    if sender.user_id != env.sender_id or sender.key_id != env.sender_key_id:
        raise EnvelopeError("bad_signature", "envelope sender does not match the given key")
    if not verify_signature(sender.ed25519_public, b64d(env.signature), signing_digest(env)):
        raise EnvelopeError("bad_signature", "signature does not verify")
    mine = next((r for r in env.recipients if r.user_id == user_id and r.key_id == device.key_id), None)
    if mine is None:
        raise EnvelopeError("not_a_recipient", "no recipient entry for this device")
    aad = header_aad(env)
    try:
        ctx = _HPKE.create_recipient_context(
            b64d(mine.enc), _HPKE.kem.deserialize_private_key(device.x25519_private), info=HPKE_INFO
        )
        content_key = ctx.open(b64d(mine.wrapped_key), aad)
    except (PyHPKEError, ValueError):
        raise EnvelopeError("decryption_failed", "cannot unwrap the content key") from None
    plain = _decrypt_content(env.suite, content_key, b64d(env.nonce), b64d(env.ciphertext), aad)
    return _decode_body(plain)


def _decode_body(plain: bytes) -> dict[str, Any]:
    try:
        body = json.loads(plain.decode("utf-8"))
        canonical_json(body)  # rejects values other JSON implementations would read differently
    except (UnicodeDecodeError, ValueError, CanonicalJSONError):
        raise EnvelopeError("malformed_envelope", "decrypted body is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise EnvelopeError("malformed_envelope", 'decrypted body has no string "type"')
    return body
