"""Device key pairs (SPEC §4): X25519 for HPKE key wrapping, Ed25519 for envelope signatures.

Private keys are kept as raw 32-byte strings (RFC 7748 / RFC 8032 encodings), the format the web
client can also import. :func:`export_device_keys` writes them as JSON, optionally sealed with a
passphrase (scrypt N=2**15, r=8, p=1 -> AES-256-GCM); the CLI stores that file with mode 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from chainchat.crypto.errors import KeyFileError
from chainchat_protocol.b64 import B64Error, b64d, b64d_exact, b64e
from chainchat_protocol.keys import key_id

__all__ = [
    "DeviceKeys",
    "PublicDeviceKey",
    "export_device_keys",
    "import_device_keys",
    "verify_signature",
]

_KEY_FILE_VERSION = 1
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1


@dataclass(frozen=True, slots=True)
class PublicDeviceKey:
    """A device's published keys, as the directory returns them."""

    user_id: str
    x25519_public: bytes
    ed25519_public: bytes
    # SPEC §4 key id of this device, derived once (every seal and open compares key ids)
    key_id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key_id", key_id(self.x25519_public, self.ed25519_public))

    @classmethod
    def from_b64(cls, user_id: str, x25519_public: str, ed25519_public: str) -> PublicDeviceKey:
        """Build from the base64url fields of ``GET /keys/{user_id}``."""
        return cls(user_id, b64d_exact(x25519_public, 32), b64d_exact(ed25519_public, 32))


class DeviceKeys:
    """The private key pairs of one device."""

    __slots__ = ("_ed", "_ed_pub", "_key_id", "_x", "_x_pub")

    def __init__(self, x25519_private: bytes, ed25519_private: bytes) -> None:
        if len(x25519_private) != 32 or len(ed25519_private) != 32:
            raise ValueError("private keys must be 32 raw bytes each")
        self._x = X25519PrivateKey.from_private_bytes(x25519_private)
        self._ed = Ed25519PrivateKey.from_private_bytes(ed25519_private)
        self._x_pub = self._x.public_key().public_bytes_raw()
        self._ed_pub = self._ed.public_key().public_bytes_raw()
        self._key_id = key_id(self._x_pub, self._ed_pub)

    @classmethod
    def generate(cls) -> DeviceKeys:
        """Fresh key pairs from the OS CSPRNG."""
        return cls(os.urandom(32), os.urandom(32))

    @property
    def x25519_private(self) -> bytes:
        """Raw X25519 private key (32 bytes). Handle with care."""
        return self._x.private_bytes_raw()

    @property
    def ed25519_private(self) -> bytes:
        """Raw Ed25519 private key seed (32 bytes). Handle with care."""
        return self._ed.private_bytes_raw()

    @property
    def x25519_key(self) -> X25519PrivateKey:
        """The X25519 private key object (for HPKE). Handle with care."""
        return self._x

    @property
    def x25519_public(self) -> bytes:
        """Raw X25519 public key (32 bytes)."""
        return self._x_pub

    @property
    def ed25519_public(self) -> bytes:
        """Raw Ed25519 public key (32 bytes)."""
        return self._ed_pub

    @property
    def key_id(self) -> str:
        """SPEC §4 key id of this device."""
        return self._key_id

    def public(self, user_id: str) -> PublicDeviceKey:
        """This device's public keys, labelled with its owner."""
        return PublicDeviceKey(user_id, self._x_pub, self._ed_pub)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) over ``message``."""
        return self._ed.sign(message)

    def publish_body(self, suites: list[str]) -> dict[str, Any]:
        """Body of ``PUT /keys/me``."""
        return {
            "x25519_public": b64e(self._x_pub),
            "ed25519_public": b64e(self._ed_pub),
            "suite_support": list(suites),
        }

    def __repr__(self) -> str:  # never print private material
        return f"DeviceKeys(key_id={self.key_id!r})"


def verify_signature(ed25519_public: bytes, signature: bytes, message: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(ed25519_public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _scrypt_key(passphrase: str, salt: bytes) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return kdf.derive(passphrase.encode("utf-8"))


def export_device_keys(keys: DeviceKeys, passphrase: str | None = None) -> bytes:
    """Serialise ``keys`` as JSON bytes; with a passphrase the private keys are AES-256-GCM sealed
    under an scrypt-derived key (the key id is the associated data, so files cannot be mixed)."""
    secret = json.dumps(
        {"x25519_private": b64e(keys.x25519_private), "ed25519_private": b64e(keys.ed25519_private)}
    ).encode()
    doc: dict[str, Any] = {"version": _KEY_FILE_VERSION, "key_id": keys.key_id}
    if passphrase is None:
        doc["keys"] = json.loads(secret)
    else:
        salt, nonce = os.urandom(16), os.urandom(12)
        sealed = AESGCM(_scrypt_key(passphrase, salt)).encrypt(nonce, secret, keys.key_id.encode())
        doc["sealed"] = {
            "kdf": "scrypt",
            "n": _SCRYPT_N,
            "r": _SCRYPT_R,
            "p": _SCRYPT_P,
            "salt": b64e(salt),
            "nonce": b64e(nonce),
            "ciphertext": b64e(sealed),
        }
    return json.dumps(doc, indent=2).encode()


def import_device_keys(data: bytes, passphrase: str | None = None) -> DeviceKeys:
    """Inverse of :func:`export_device_keys`; raises :class:`KeyFileError` on any problem."""
    try:
        doc = json.loads(data)
        if doc.get("version") != _KEY_FILE_VERSION:
            raise KeyFileError("unsupported key file version")
        if "sealed" in doc:
            secret = _unseal(doc["sealed"], doc["key_id"], passphrase)
        else:
            secret = doc["keys"]
        keys = DeviceKeys(b64d_exact(secret["x25519_private"], 32), b64d_exact(secret["ed25519_private"], 32))
    except KeyFileError:
        raise
    except (ValueError, KeyError, TypeError, B64Error) as exc:
        raise KeyFileError(f"malformed key file: {exc}") from exc
    if keys.key_id != doc["key_id"]:
        raise KeyFileError("key file key_id does not match its keys")
    return keys


def _unseal(sealed: dict[str, Any], kid: str, passphrase: str | None) -> dict[str, Any]:
    if passphrase is None:
        raise KeyFileError("key file is passphrase-protected", code="passphrase_required")
    if (sealed["kdf"], sealed["n"], sealed["r"], sealed["p"]) != (
        "scrypt",
        _SCRYPT_N,
        _SCRYPT_R,
        _SCRYPT_P,
    ):
        raise KeyFileError("unsupported key file KDF parameters")
    key = _scrypt_key(passphrase, b64d_exact(sealed["salt"], 16))
    try:
        plain = AESGCM(key).decrypt(b64d_exact(sealed["nonce"], 12), b64d(sealed["ciphertext"]), kid.encode())
    except InvalidTag as exc:
        raise KeyFileError("wrong passphrase", code="bad_passphrase") from exc
    result: dict[str, Any] = json.loads(plain)
    return result
