"""Message envelopes v1 (SPEC §5) and v2 (``docs/envelope.md``): the model, structural validation,
and the byte strings that are authenticated (header AAD, HPKE info, signature input, digest).

v2 differs from v1 in two places only: it carries ``key_commit`` (32 bytes, signed like every
other field; recipients check it against the content key they unwrapped), and its HPKE key wraps
bind the header through the HPKE ``info`` (:func:`wrap_info`) instead of the HPKE ``aad``.

The chat server validates envelopes with :class:`Envelope` without being able to decrypt them:
version, known suite, canonical base64url with exact sizes for every fixed-size field, key ids,
identifiers, non-empty recipients without duplicates, ``key_commit`` present exactly in v2, and the
64 KiB size limit. Sealing and opening live in the SDK (``chainchat.crypto.envelope``).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    StringConstraints,
    model_serializer,
    model_validator,
)

from chainchat_protocol.b64 import B64Error, b64d, decoded_size
from chainchat_protocol.canonical import canonical_json
from chainchat_protocol.keys import KEY_ID_PATTERN

__all__ = [
    "AES_GCM_NONCE_SIZE",
    "BLOWFISH_NONCE_SIZE",
    "ENC_SIZE",
    "ENVELOPE_FIELDS",
    "ENVELOPE_VERSIONS",
    "HMAC_TAG_SIZE",
    "KEY_COMMIT_SIZE",
    "MAX_ENVELOPE_BYTES",
    "SIGNATURE_SIZE",
    "SUITES",
    "SUITE_AES256GCM",
    "SUITE_BLOWFISH",
    "WRAPPED_KEY_SIZE",
    "Envelope",
    "Recipient",
    "Suite",
    "envelope_bytes",
    "envelope_digest",
    "header_aad",
    "signing_digest",
    "signing_input",
    "wrap_info",
]

SUITE_AES256GCM: Final = "hpke-x25519-aes256gcm"
SUITE_BLOWFISH: Final = "hpke-x25519-blowfish"
Suite = Literal["hpke-x25519-aes256gcm", "hpke-x25519-blowfish"]
SUITES: Final = (SUITE_AES256GCM, SUITE_BLOWFISH)

AES_GCM_NONCE_SIZE: Final = 12
AES_GCM_TAG_SIZE: Final = 16
BLOWFISH_NONCE_SIZE: Final = 8
HMAC_TAG_SIZE: Final = 32
ENC_SIZE: Final = 32  # DHKEM(X25519) encapsulated key
WRAPPED_KEY_SIZE: Final = 32 + 16  # content key + AES-GCM tag
SIGNATURE_SIZE: Final = 64
KEY_COMMIT_SIZE: Final = 32  # HMAC-SHA256
ENVELOPE_VERSIONS: Final = (1, 2)
MAX_ENVELOPE_BYTES: Final = 64 * 1024
MAX_RECIPIENTS: Final = 1024

_NONCE_SIZE = {SUITE_AES256GCM: AES_GCM_NONCE_SIZE, SUITE_BLOWFISH: BLOWFISH_NONCE_SIZE}
_MIN_CIPHERTEXT = {SUITE_AES256GCM: AES_GCM_TAG_SIZE, SUITE_BLOWFISH: HMAC_TAG_SIZE}
_HEADER_FIELDS = ("v", "suite", "conversation_id", "sender_id", "sender_key_id")
# every field of an envelope, in wire order (``key_commit`` only in v2)
ENVELOPE_FIELDS: Final = (
    *_HEADER_FIELDS, "key_commit", "nonce", "ciphertext", "recipients", "signature",
)  # fmt: skip
_WRAP_INFO_V1: Final = b"chainchat/v1/wrap"
_WRAP_INFO_V2: Final = b"chainchat/v2/wrap"


def _b64(value: str) -> str:
    try:
        b64d(value)
    except B64Error as exc:
        raise ValueError(str(exc)) from exc
    return value


def _b64_sized(size: int) -> AfterValidator:
    def check(value: str) -> str:
        try:
            data = b64d(value)
        except B64Error as exc:
            raise ValueError(str(exc)) from exc
        if len(data) != size:
            raise ValueError(f"must decode to {size} bytes, got {len(data)}")
        return value

    return AfterValidator(check)


# Identifiers (user, conversation) are opaque to this layer; the charset keeps them printable,
# unambiguous in logs and identical under any JSON serialiser.
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
KeyId = Annotated[str, StringConstraints(pattern=KEY_ID_PATTERN)]
B64 = Annotated[str, AfterValidator(_b64)]


class Recipient(BaseModel):
    """The content key sealed with HPKE to one recipient device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: Identifier
    key_id: KeyId
    enc: Annotated[str, _b64_sized(ENC_SIZE)]
    wrapped_key: Annotated[str, _b64_sized(WRAPPED_KEY_SIZE)]


class Envelope(BaseModel):
    """Message envelope v1 or v2, structurally validated (no key material needed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1, 2]
    suite: Suite
    conversation_id: Identifier
    sender_id: Identifier
    sender_key_id: KeyId
    # v2 only: HMAC-SHA256(K, "chainchat/v1/commit" || nonce); absent (not null) on the wire in v1
    key_commit: Annotated[str, _b64_sized(KEY_COMMIT_SIZE)] | None = None
    nonce: B64
    ciphertext: B64
    recipients: list[Recipient] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    signature: Annotated[str, _b64_sized(SIGNATURE_SIZE)]
    # canonical bytes, computed once: the size check, the digest and the stored form all need them
    _canonical: bytes | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _suite_sizes_and_limits(self) -> Envelope:
        absent = self.key_commit is None
        if absent != (self.v == 1) or (absent and "key_commit" in self.model_fields_set):
            raise ValueError("key_commit is required in envelope v2 and not allowed in v1")
        if decoded_size(self.nonce) != _NONCE_SIZE[self.suite]:  # fields are checked b64 already
            raise ValueError(f"nonce must be {_NONCE_SIZE[self.suite]} bytes for {self.suite}")
        if decoded_size(self.ciphertext) < _MIN_CIPHERTEXT[self.suite]:
            raise ValueError("ciphertext shorter than its authentication tag")
        seen = {(r.user_id, r.key_id) for r in self.recipients}
        if len(seen) != len(self.recipients):
            raise ValueError("duplicate (user_id, key_id) in recipients")
        if len(envelope_bytes(self)) > MAX_ENVELOPE_BYTES:
            raise ValueError(f"envelope larger than {MAX_ENVELOPE_BYTES} bytes")
        return self

    @model_serializer(mode="wrap")
    def _omit_absent_key_commit(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # a v1 envelope serialises exactly as before v2 existed: its signature and digest cover
        # the fields without "key_commit"
        data: dict[str, Any] = handler(self)
        if data.get("key_commit", 0) is None:
            del data["key_commit"]
        return data

    def model_copy(self, *, update: Any = None, deep: bool = False) -> Envelope:
        copy = super().model_copy(update=update, deep=deep)
        copy._canonical = None  # another envelope now: its bytes are its own
        return copy

    def header(self) -> dict[str, Any]:
        """The authenticated header: ``v, suite, conversation_id, sender_id, sender_key_id``."""
        return {name: getattr(self, name) for name in _HEADER_FIELDS}

    def unsigned(self) -> dict[str, Any]:
        """The envelope as a JSON object without ``signature`` (what is signed)."""
        return self.model_dump(mode="json", exclude={"signature"})


def header_aad(header: Envelope | dict[str, Any]) -> bytes:
    """Associated data of the content AEAD (v1 and v2) and of every v1 HPKE key wrap; in v2 it is
    the tail of :func:`wrap_info`. RFC 8785 canonical JSON of
    ``{v, suite, conversation_id, sender_id, sender_key_id}``."""
    fields = header.header() if isinstance(header, Envelope) else header
    return canonical_json({name: fields[name] for name in _HEADER_FIELDS})


def wrap_info(header: Envelope | dict[str, Any], aad: bytes | None = None) -> bytes:
    """HPKE ``info`` of every key wrap: ``"chainchat/v1/wrap"`` in v1 (whose wraps carry the header
    as HPKE ``aad``); ``"chainchat/v2/wrap" || header_aad`` in v2 (whose wraps have an empty
    ``aad``). The label has a fixed length, so the concatenation is unambiguous. ``aad``: the
    header's :func:`header_aad` when the caller has it already."""
    version = header.v if isinstance(header, Envelope) else header["v"]
    if version == 1:
        return _WRAP_INFO_V1
    return _WRAP_INFO_V2 + (header_aad(header) if aad is None else aad)


def signing_input(unsigned: Envelope | dict[str, Any]) -> bytes:
    """Canonical JSON of the envelope without ``signature``."""
    obj = unsigned.unsigned() if isinstance(unsigned, Envelope) else dict(unsigned)
    obj.pop("signature", None)
    return canonical_json(obj)


def signing_digest(unsigned: Envelope | dict[str, Any]) -> bytes:
    """SHA-256 of :func:`signing_input`: the 32 bytes the sender signs with Ed25519."""
    return hashlib.sha256(signing_input(unsigned)).digest()


def envelope_bytes(envelope: Envelope) -> bytes:
    """Canonical JSON of the whole envelope: its stored form, size-limited and logged (computed
    once per envelope, which is immutable)."""
    if envelope._canonical is None:
        envelope._canonical = canonical_json(envelope.model_dump(mode="json"))
    return envelope._canonical


def envelope_digest(envelope: Envelope) -> str:
    """Hex SHA-256 of :func:`envelope_bytes`: the ``digest`` of its ``message`` log entry."""
    return hashlib.sha256(envelope_bytes(envelope)).hexdigest()
