"""The two byte streams of the service, each checked as it flows and never held whole in memory.

* :class:`UploadMeter` sits between the client's body and IPFS ``add``: it counts, hashes and stops
  the upload the moment it passes ``MAX_FILE_BYTES``.
* :func:`verified_content` sits between IPFS ``cat`` and the client: it checks the byte count and,
  on a full read, the SHA-256 recorded at upload, and withholds the last chunk until both match,
  so tampered or truncated content is never delivered as a complete, valid response.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator

from prometheus_client import Counter

from chainchat_protocol.errors import PayloadTooLarge
from chainchat_protocol.files import FilesErrorCode
from chainchat_service.logging import get_logger

log = get_logger(__name__)

INTEGRITY_FAILURES = Counter(
    "chainchat_files_integrity_failures_total",
    "Downloads aborted: IPFS bytes differ from the record",
    ["kind"],
)


class FileTooLarge(PayloadTooLarge):
    default_code = FilesErrorCode.FILE_TOO_LARGE


class ContentIntegrityError(Exception):
    """What IPFS returned is not what was uploaded (tampered store, truncated read)."""


class UploadMeter:
    """An async iterator over ``source`` that counts and hashes bytes and enforces ``limit``."""

    def __init__(self, source: AsyncIterable[bytes], limit: int) -> None:
        self._source = source.__aiter__()
        self.limit = limit
        self.size = 0
        self.finished = False
        self._digest = hashlib.sha256()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        while True:
            try:
                chunk = await self._source.__anext__()
            except StopAsyncIteration:
                self.finished = True
                raise
            if not chunk:
                continue
            self.size += len(chunk)
            if self.size > self.limit:
                raise FileTooLarge(f"the file is larger than the limit of {self.limit} bytes")
            self._digest.update(chunk)
            return chunk

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    async def drain(self, budget: int) -> bool:
        """Read and drop what the client still sends, up to ``budget`` bytes; True if it ended.

        Answering before the body is read makes the server close the connection under a client
        that is still writing, and the client may never see the answer; a bounded drain avoids it.
        """
        if self.finished:
            return True
        read = 0
        try:
            async for chunk in self._source:
                read += len(chunk)
                if read > budget:
                    return False
        except Exception:  # noqa: BLE001 - the client went away: nothing left to drain
            return False
        self.finished = True
        return True


async def verified_content(
    chunks: AsyncIterable[bytes], *, expected_size: int, expected_sha256: str | None, label: str
) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through; raise :class:`ContentIntegrityError` instead of the last chunk when
    the count (or, given ``expected_sha256``, the digest) differs from the record."""
    digest = hashlib.sha256() if expected_sha256 is not None else None
    received = 0
    held: bytes | None = None
    async for chunk in chunks:
        if not chunk:
            continue
        received += len(chunk)
        if received > expected_size:
            _fail("too_long", label, f"IPFS returned more than the expected {expected_size} bytes")
        if digest is not None:
            digest.update(chunk)
        if held is not None:
            yield held
        held = chunk
    if received != expected_size:
        _fail("truncated", label, f"IPFS returned {received} of {expected_size} bytes")
    if digest is not None and digest.hexdigest() != expected_sha256:
        _fail(
            "sha256_mismatch",
            label,
            f"SHA-256 {digest.hexdigest()} differs from the recorded {expected_sha256}",
        )
    if held is not None:
        yield held


def _fail(kind: str, label: str, detail: str) -> None:
    INTEGRITY_FAILURES.labels(kind).inc()
    # Loud on purpose: the store returned bytes that are not the uploaded file.
    log.error("file_integrity_violation", kind=kind, file=label, detail=detail)
    raise ContentIntegrityError(f"{label}: {detail}")
