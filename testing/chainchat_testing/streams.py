"""Large plaintexts for the file tests, made while they are sent (never held in memory whole)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

MIB = 1024 * 1024


async def random_plaintext(size: int, digest: Any) -> AsyncIterator[bytes]:
    """``size`` bytes in 1 MiB pieces (one random block repeated), each fed to ``digest`` (a
    ``hashlib`` object) as it is yielded, so the test knows the SHA-256 of what it sent."""
    block = os.urandom(MIB)
    for offset in range(0, size, MIB):
        piece = block[: min(MIB, size - offset)]
        digest.update(piece)
        yield piece
