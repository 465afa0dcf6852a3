"""Sealing of the server-side secrets the auth database keeps: TOTP secrets and JWT signing keys.

A copy of the database (a backup, a replica, a leaked dump) must not be enough to mint tokens or
generate a user's second factor. Each secret is sealed with AES-256-GCM under a key derived from
``AUTH_DATA_KEY`` (HKDF-SHA256), bound by the AAD to the column and row it belongs to, so a sealed
value copied into another row does not open.

Stored form: ``v1.<key id>.<base64url(nonce || ciphertext || tag)>``. The key id names the data key,
so ``AUTH_DATA_KEY`` can be rotated: put the old one in ``AUTH_DATA_KEY_PREVIOUS``, restart, and
:func:`reseal_all` moves every row to the new key at start-up.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from chainchat_protocol.b64 import b64d, b64e

VERSION = "v1"
# used only outside production when AUTH_DATA_KEY is empty: production refuses to start without one
DEV_DATA_KEY = "chainchat-dev-data-key"
_NONCE = 12


class VaultError(Exception):
    """A sealed value that cannot be opened: wrong key, unknown key id, or tampered."""


class _DataKey:
    def __init__(self, material: str) -> None:
        raw = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"chainchat-auth-vault", info=VERSION.encode()
        ).derive(material.encode())
        self.kid = hashlib.sha256(b"kid" + raw).hexdigest()[:8]
        self.aead = AESGCM(raw)


class SecretVault:
    def __init__(self, key: str, previous: str = "") -> None:
        self._current = _DataKey(key)
        self._keys = {self._current.kid: self._current}
        if previous:
            old = _DataKey(previous)
            self._keys.setdefault(old.kid, old)

    def seal(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = self._current.aead.encrypt(nonce, plaintext.encode(), context.encode())
        return f"{VERSION}.{self._current.kid}.{b64e(nonce + sealed)}"

    def open(self, stored: str, *, context: str) -> str:
        version, _, rest = stored.partition(".")
        kid, _, body = rest.partition(".")
        if version != VERSION or not body:
            raise VaultError("not a sealed value")
        key = self._keys.get(kid)
        if key is None:
            raise VaultError(f"sealed under an unknown data key ({kid}): is AUTH_DATA_KEY right?")
        try:
            blob = b64d(body)
            return key.aead.decrypt(blob[:_NONCE], blob[_NONCE:], context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise VaultError("a sealed value does not open: tampered, or sealed for another row") from exc

    def is_current(self, stored: str) -> bool:
        return stored.startswith(f"{VERSION}.{self._current.kid}.")

    def upgrade(self, stored: str, *, context: str) -> str | None:
        """The value sealed under the current key, or ``None`` when it already is.

        A value written before sealing existed (plain text) is sealed as it is.
        """
        if self.is_current(stored):
            return None
        plaintext = self.open(stored, context=context) if stored.startswith(f"{VERSION}.") else stored
        return self.seal(plaintext, context=context)


def totp_context(user_id: str, column: str = "totp_secret") -> str:
    return f"user.{column}:{user_id}"


def signing_key_context(kid: str) -> str:
    return f"signing_key.private_key:{kid}"
