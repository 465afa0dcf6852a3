"""Random tokens and their stored form: only a SHA-256 of any bearer secret reaches the database."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from chainchat_protocol.b64 import b64e


def new_token(nbytes: int = 32) -> str:
    """A fresh random bearer token, base64url without padding."""
    return b64e(secrets.token_bytes(nbytes))


def hash_token(token: str) -> str:
    """What the database keeps of a token. The tokens are 256-bit random values, so a fast hash
    is enough: there is nothing to brute-force the way there is with passwords."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_hash(stored: str, presented_token: str) -> bool:
    """Constant-time comparison of a stored hash with the hash of a presented token."""
    return hmac.compare_digest(stored.encode(), hash_token(presented_token).encode())
