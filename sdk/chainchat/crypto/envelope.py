"""Seal and open message envelopes v2 (``docs/envelope.md``) and v1 (SPEC §5).

Construction, both versions and both suites:

* A fresh random 32-byte content key ``K`` per message encrypts the body: the UTF-8 RFC 8785
  canonical JSON of ``{"type": ..., "text"|"file": ..., "sent_at": ...}``. The associated data
  ``AAD`` is the canonical JSON of the header ``{v, suite, conversation_id, sender_id,
  sender_key_id}`` (:func:`chainchat_protocol.envelope.header_aad`).
* ``K`` is wrapped to every recipient device with HPKE (RFC 9180) base mode,
  DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM (single-shot: one ``seal`` per context).
  The wrap is bound to the header, so a wrapped key cannot be lifted into an envelope with another
  conversation, sender, suite or version even before the signature is checked (defence in depth;
  the signature covers everything):

  - v2: ``info = "chainchat/v2/wrap" || AAD``, HPKE ``aad`` empty
    (:func:`chainchat_protocol.envelope.wrap_info`). Sealed and opened with ``cryptography``'s
    HPKE (Rust), whose single-shot API takes ``info`` but no ``aad``.
  - v1: ``info = "chainchat/v1/wrap"``, HPKE ``aad = AAD``. Opened (and sealed, for the v1
    vectors) with ``pyhpke``, because ``cryptography``'s public HPKE API has no ``aad``.

  The ephemeral key is drawn by the HPKE library; only to reproduce the deterministic test vectors
  it is ``DeriveKeyPair(ikm)`` from an injected ``ikm`` (RFC 9180's own ``GenerateKeyPair`` with
  32 random bytes), which goes through ``pyhpke`` because ``cryptography`` cannot take it.
* v2 only: ``key_commit = HMAC-SHA256(K, "chainchat/v1/commit" || nonce)``, a field of the signed
  envelope. AES-GCM is not key-committing and each recipient unwraps its own ``K``, so without it a
  sender could sign one envelope that opens differently per recipient ("invisible salamanders").
  A recipient compares it (constant time) with the ``K`` it unwrapped *before* decrypting; with
  ``K`` committed and ``nonce``, ``ciphertext`` and ``AAD`` signed, the plaintext is the same for
  every recipient.
* ``hpke-x25519-aes256gcm``: ``ciphertext = AES-256-GCM(K, nonce[12], body, AAD)`` (ct || tag16).
* ``hpke-x25519-blowfish``: ``Ke = HKDF-SHA256(K, salt="", info="chainchat/v1/blowfish/enc", 32)``,
  ``Km = HKDF-SHA256(K, salt="", info="chainchat/v1/blowfish/mac", 32)``; Blowfish (256-bit key)
  in CTR mode whose 8-byte counter block is ``nonce[0:4] || uint32_be(uint32_be(nonce[4:8]) + i)``
  for block ``i`` (the sender picks ``nonce = 4 random bytes || 00000000``; the counter never
  wraps since an envelope is < 2**32 blocks); ``tag = HMAC-SHA256(Km, uint64_be(len(AAD)) || AAD
  || nonce || ct)`` (the length prefix keeps the AAD/ciphertext boundary unambiguous);
  ``ciphertext = ct || tag``. The tag is checked (constant time) before anything is decrypted.
* ``signature = Ed25519(sender, SHA-256(canonical JSON of the envelope without "signature"))``.

Opening checks, in order: structure, version and suite, signature against the sender's published
key, own recipient entry, key unwrap, key commitment (v2), content decryption. Each failure raises
:class:`~chainchat.crypto.errors.EnvelopeError` with a stable ``code``; no partial plaintext is
ever returned. :func:`open_envelope_detailed` also says whether the envelope was key-committing
(v1 envelopes stay readable, flagged as not key-committing).
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
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import ValidationError
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, PyHPKEError

from chainchat.crypto.errors import EnvelopeError
from chainchat.crypto.keys import DeviceKeys, PublicDeviceKey, verify_signature
from chainchat_protocol.b64 import b64d, b64e
from chainchat_protocol.canonical import CanonicalJSONError, canonical_json
from chainchat_protocol.envelope import (
    AES_GCM_NONCE_SIZE,
    ENC_SIZE,
    ENVELOPE_VERSIONS,
    HMAC_TAG_SIZE,
    SUITE_AES256GCM,
    SUITES,
    Envelope,
    Recipient,
    header_aad,
    signing_digest,
    wrap_info,
)

__all__ = [
    "ENVELOPE_VERSION",
    "KEY_COMMIT_LABEL",
    "OpenedEnvelope",
    "SealRandomness",
    "blowfish_keys",
    "key_commitment",
    "open_envelope",
    "open_envelope_detailed",
    "seal_envelope",
    "wrap_key",
]

ENVELOPE_VERSION = 2  # what senders produce
KEY_COMMIT_LABEL = b"chainchat/v1/commit"
BLOWFISH_ENC_INFO = b"chainchat/v1/blowfish/enc"
BLOWFISH_MAC_INFO = b"chainchat/v1/blowfish/mac"
CONTENT_KEY_SIZE = 32
_HPKE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)  # v2, and every fresh v2 wrap
_PYHPKE = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)


@dataclass(frozen=True, slots=True)
class SealRandomness:
    """Every random input of :func:`seal_envelope`; injected only to pin test vectors.

    ``ephemeral_ikm`` (one 32-byte IKM per recipient, in recipient order) makes each HPKE
    ephemeral key ``DeriveKeyPair(ikm)``; ``None`` lets the HPKE library draw it."""

    content_key: bytes
    nonce: bytes
    ephemeral_ikm: Sequence[bytes] | None = None

    @classmethod
    def fresh(cls, suite: str) -> SealRandomness:
        """Draw the content key and nonce from the OS CSPRNG."""
        nonce = os.urandom(AES_GCM_NONCE_SIZE) if suite == SUITE_AES256GCM else os.urandom(4) + bytes(4)
        return cls(os.urandom(CONTENT_KEY_SIZE), nonce)


@dataclass(frozen=True, slots=True)
class OpenedEnvelope:
    """What :func:`open_envelope_detailed` returns: the body and how it was protected."""

    body: dict[str, Any]
    version: int

    @property
    def key_committing(self) -> bool:
        """True for v2: every recipient provably decrypted the same text (``key_commit``)."""
        return self.version >= 2


def key_commitment(content_key: bytes, nonce: bytes) -> bytes:
    """v2 ``key_commit``: ``HMAC-SHA256(K, "chainchat/v1/commit" || nonce)``."""
    return hmac.new(content_key, KEY_COMMIT_LABEL + nonce, sha256).digest()


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


def wrap_key(
    recipient: PublicDeviceKey, key: bytes, header: Mapping[str, Any], ikm: bytes | None = None
) -> Recipient:
    """Seal the content key ``key`` to one recipient device for an envelope with ``header``
    (``v`` decides the binding, see the module docstring); ``ikm`` only for test vectors."""
    aad = header_aad(dict(header))
    return Recipient(**_wrap(recipient, key, header["v"], wrap_info(dict(header), aad), aad, ikm))


def _wrap(
    recipient: PublicDeviceKey, key: bytes, version: int, info: bytes, aad: bytes, ikm: bytes | None
) -> dict[str, str]:
    if version != 1 and ikm is None:
        sealed = _HPKE.encrypt(key, X25519PublicKey.from_public_bytes(recipient.x25519_public), info)
        enc, wrapped = sealed[:ENC_SIZE], sealed[ENC_SIZE:]
    else:
        pkr = _PYHPKE.kem.deserialize_public_key(recipient.x25519_public)
        eks = None if ikm is None else _PYHPKE.kem.derive_key_pair(ikm)
        enc, ctx = _PYHPKE.create_sender_context(pkr, info=info, eks=eks)
        wrapped = ctx.seal(key, aad if version == 1 else b"")
    return {
        "user_id": recipient.user_id,
        "key_id": recipient.key_id,
        "enc": b64e(enc),
        "wrapped_key": b64e(wrapped),
    }


def _unwrap(env: Envelope, mine: Recipient, device: DeviceKeys, aad: bytes) -> bytes:
    info = wrap_info(env, aad)
    try:
        if env.v == 1:
            ctx = _PYHPKE.create_recipient_context(
                b64d(mine.enc), _PYHPKE.kem.deserialize_private_key(device.x25519_private), info=info
            )
            return ctx.open(b64d(mine.wrapped_key), aad)
        return _HPKE.decrypt(b64d(mine.enc) + b64d(mine.wrapped_key), device.x25519_key, info)
    except (PyHPKEError, InvalidTag, ValueError):
        raise EnvelopeError("decryption_failed", "cannot unwrap the content key") from None


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
    version: int = ENVELOPE_VERSION,
    randomness: SealRandomness | None = None,
) -> Envelope:
    """Encrypt ``body`` for ``recipients`` (include the sender's own devices to read history) and
    sign it with ``sender``'s Ed25519 key. ``version`` 1 exists for the v1 vectors and tests.
    Raises ``ValueError`` for bad input and :class:`EnvelopeError` (``envelope_too_large`` /
    ``unsupported_suite``) otherwise."""
    if suite not in SUITES or version not in ENVELOPE_VERSIONS:
        raise EnvelopeError("unsupported_suite", f"unknown suite {suite!r} or version {version!r}")
    rnd = randomness or SealRandomness.fresh(suite)
    ikms = rnd.ephemeral_ikm if rnd.ephemeral_ikm is not None else [None] * len(recipients)
    if len(ikms) != len(recipients) or len(rnd.content_key) != CONTENT_KEY_SIZE:
        raise ValueError("randomness does not fit the recipients")
    header: dict[str, Any] = {
        "v": version,
        "suite": suite,
        "conversation_id": conversation_id,
        "sender_id": sender_id,
        "sender_key_id": sender.key_id,
    }
    aad = header_aad(header)
    info = wrap_info(header, aad)
    ciphertext = _encrypt_content(suite, rnd.content_key, rnd.nonce, _encode_body(body), aad)
    unsigned: dict[str, Any] = {
        **header,
        "nonce": b64e(rnd.nonce),
        "ciphertext": b64e(ciphertext),
        "recipients": [
            _wrap(r, rnd.content_key, version, info, aad, ikm)
            for r, ikm in zip(recipients, ikms, strict=True)
        ],
    }
    if version >= 2:
        unsigned["key_commit"] = b64e(key_commitment(rnd.content_key, rnd.nonce))
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
    if obj.get("v") not in ENVELOPE_VERSIONS or obj.get("suite") not in SUITES:
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
    """Verify and decrypt an envelope (v1 or v2) for ``device`` (owned by ``user_id``); return the
    body. :func:`open_envelope_detailed` also tells whether it was key-committing."""
    return open_envelope_detailed(envelope, device=device, user_id=user_id, sender=sender).body


def open_envelope_detailed(
    envelope: Envelope | Mapping[str, Any] | str | bytes,
    *,
    device: DeviceKeys,
    user_id: str,
    sender: PublicDeviceKey,
) -> OpenedEnvelope:
    """Verify and decrypt an envelope for ``device`` (owned by ``user_id``).

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
    content_key = _unwrap(env, mine, device, aad)
    nonce = b64d(env.nonce)
    if env.key_commit is not None and not hmac.compare_digest(
        b64d(env.key_commit), key_commitment(content_key, nonce)
    ):
        raise EnvelopeError("bad_key_commit", "the content key does not match the envelope's key_commit")
    plain = _decrypt_content(env.suite, content_key, nonce, b64d(env.ciphertext), aad)
    return OpenedEnvelope(_decode_body(plain), env.v)


def _decode_body(plain: bytes) -> dict[str, Any]:
    try:
        body = json.loads(plain.decode("utf-8"))
        canonical_json(body)  # rejects values other JSON implementations would read differently
    except (UnicodeDecodeError, ValueError, CanonicalJSONError):
        raise EnvelopeError("malformed_envelope", "decrypted body is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise EnvelopeError("malformed_envelope", 'decrypted body has no string "type"')
    return body
