"""Base64url without padding (RFC 4648 §5), the one byte encoding of every JSON format.

Decoding is strict on purpose: a byte string must have exactly one textual form, otherwise two
different envelopes (different canonical JSON, different signature input and digest) could carry
the same bytes, and a server could re-encode a field without breaking anything visible.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["B64Error", "b64d", "b64d_exact", "b64e", "decoded_size"]

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_VALUE = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}
# the bits of the last character that carry no data, by ``len(text) % 4``: 2 → 4 bits, 3 → 2 bits
_UNUSED_BITS = {0: 0, 2: 0b1111, 3: 0b11}


class B64Error(ValueError):
    """Raised for text that is not canonical unpadded base64url."""


def b64e(data: bytes) -> str:
    """Encode bytes as base64url without ``=`` padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Decode canonical unpadded base64url.

    Rejects padding, characters outside ``A-Z a-z 0-9 - _`` (including whitespace and the
    ``+ /`` of standard base64), impossible lengths (``len % 4 == 1``) and non-zero trailing bits,
    so that ``b64e(b64d(s)) == s`` holds for every accepted ``s``.
    """
    if not isinstance(text, str) or _ALPHABET.fullmatch(text) is None:
        raise B64Error("not base64url without padding")
    if len(text) % 4 == 1:
        raise B64Error("impossible base64url length")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - alphabet already checked
        raise B64Error("not base64url") from exc
    # Non-zero unused bits in the last character would give a second spelling of the same bytes
    # (the same test as ``b64e(data) != text``, without encoding everything again).
    unused = _UNUSED_BITS[len(text) % 4]
    if unused and _VALUE[text[-1]] & unused:
        raise B64Error("non-canonical base64url (trailing bits set)")
    return data


def decoded_size(text: str) -> int:
    """How many bytes :func:`b64d` gives for ``text`` already accepted by it, without decoding
    (every 4 characters carry 3 bytes; a last group of 2 or 3 characters, 1 or 2)."""
    return len(text) * 3 // 4


def b64d_exact(text: str, size: int) -> bytes:
    """Decode with :func:`b64d` and require exactly ``size`` bytes."""
    data = b64d(text)
    if len(data) != size:
        raise B64Error(f"expected {size} bytes, got {len(data)}")
    return data
