"""Safety numbers (SPEC §4): a 60-digit number two users compare out of band.

Algorithm (version 0, modelled on Signal's displayable fingerprint; pinned by
``chainchat_protocol/vectors/safety_numbers.json``):

1. ``key`` = concatenation of the raw 16-byte key ids of the user's devices, de-duplicated and
   sorted by their hex spelling (a user with several devices has one number covering all of them;
   adding or rotating a device changes it).
2. ``h`` = ``uint16_be(0) || key || utf8(user_id)``; then 5200 times ``h = SHA-512(h || key)``.
   The iteration makes a brute-force search for a colliding key set 5200 times costlier.
3. The user's 30-digit fingerprint: for ``i`` in 0..5, take bytes ``h[5i:5i+5]`` as a big-endian
   integer, reduce mod 100000, print as 5 zero-padded digits.
4. The safety number is the two fingerprints concatenated in ascending (string) order, so both
   users see the same 60 digits. It is shown as 12 groups of 5 digits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from chainchat_protocol.keys import is_key_id

__all__ = [
    "SAFETY_ITERATIONS",
    "SAFETY_VERSION",
    "format_safety_number",
    "safety_fingerprint",
    "safety_number",
]

SAFETY_VERSION = 0
SAFETY_ITERATIONS = 5200


def safety_fingerprint(user_id: str, key_ids: Iterable[str]) -> str:
    """One user's 30-digit half of a safety number (steps 1–3 of the module docstring)."""
    ids = sorted(set(key_ids))
    if not ids or not all(is_key_id(k) for k in ids):
        raise ValueError("need at least one key id of 32 lowercase hex characters")
    key = b"".join(bytes.fromhex(k) for k in ids)
    h = SAFETY_VERSION.to_bytes(2, "big") + key + user_id.encode("utf-8")
    for _ in range(SAFETY_ITERATIONS):
        h = hashlib.sha512(h + key).digest()
    return "".join(f"{int.from_bytes(h[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5))


def safety_number(user_a: str, key_ids_a: Iterable[str], user_b: str, key_ids_b: Iterable[str]) -> str:
    """The 60-digit safety number of two users; symmetric in its two (user, key ids) arguments."""
    halves = sorted([safety_fingerprint(user_a, key_ids_a), safety_fingerprint(user_b, key_ids_b)])
    return halves[0] + halves[1]


def format_safety_number(number: str) -> str:
    """Render 60 digits as 12 space-separated groups of 5, e.g. ``"01234 56789 ..."``."""
    if len(number) != 60 or not number.isdigit():
        raise ValueError("a safety number has 60 digits")
    return " ".join(number[i : i + 5] for i in range(0, 60, 5))
