"""Key identifiers (SPEC §4) — pure functions the servers and clients share."""

from __future__ import annotations

import hashlib
import re

__all__ = ["KEY_ID_PATTERN", "PUBLIC_KEY_SIZE", "is_key_id", "key_id"]

PUBLIC_KEY_SIZE = 32
KEY_ID_PATTERN = r"^[0-9a-f]{32}$"
_KEY_ID_RE = re.compile(KEY_ID_PATTERN)


def key_id(x25519_public: bytes, ed25519_public: bytes) -> str:
    """Return the device key id: lowercase hex of SHA-256(x25519_public || ed25519_public)[:16].

    Both arguments are raw 32-byte public keys (RFC 7748 / RFC 8032 encodings).
    """
    if len(x25519_public) != PUBLIC_KEY_SIZE or len(ed25519_public) != PUBLIC_KEY_SIZE:
        raise ValueError("public keys must be 32 raw bytes each")
    return hashlib.sha256(bytes(x25519_public) + bytes(ed25519_public)).digest()[:16].hex()


def is_key_id(value: object) -> bool:
    """True if ``value`` is a well-formed key id (32 lowercase hex characters)."""
    return isinstance(value, str) and _KEY_ID_RE.fullmatch(value) is not None
