"""Transparency-log entries (SPEC §6) and how they become Merkle leaves.

Layering, from object to tree (all hashes SHA-256):

* ``digest``      = hex SHA-256 of the logged object's canonical bytes (e.g. the envelope's
                    canonical JSON); computed by the service that owns the object.
* ``entry_bytes`` = RFC 8785 canonical JSON of the :class:`LogEntry`.
* ``leaf``        = SHA-256(entry_bytes) — SPEC §6: "a leaf is the SHA-256 of the canonical JSON
                    of a log entry". 32 bytes, and what :func:`leaf_bytes` returns.
* ``leaf_hash``   = RFC 9162 leaf hash SHA-256(0x00 || leaf) — what the tree stores and what the
                    contract's ``verifyInclusion`` takes as ``leafHash``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chainchat_protocol import merkle
from chainchat_protocol.canonical import canonical_json

__all__ = [
    "HEX_SHA256_PATTERN",
    "LogEntry",
    "LogKind",
    "digest_bytes",
    "digest_object",
    "entry_bytes",
    "format_timestamp",
    "leaf_bytes",
    "leaf_hash",
    "leaf_hash_hex",
]

LogKind = Literal["message", "file", "key", "audit", "tombstone"]
HEX_SHA256_PATTERN = r"^[0-9a-f]{64}$"
# RFC 3339 in UTC with a literal "Z": one spelling per instant keeps entry bytes reproducible.
_RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$")


def format_timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC timestamp with millisecond precision, e.g. ``2025-01-02T03:04:05.678Z``
    (the same shape as JavaScript's ``Date.toISOString()``). Naive datetimes are rejected."""
    moment = datetime.now(UTC) if moment is None else moment
    if moment.tzinfo is None:
        raise ValueError("timestamp must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def digest_bytes(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data`` (the ``digest`` of an object given its canonical bytes)."""
    return hashlib.sha256(data).hexdigest()


def digest_object(obj: Any) -> str:
    """Lowercase hex SHA-256 of the RFC 8785 canonical JSON of a JSON-model object."""
    return digest_bytes(canonical_json(obj))


class LogEntry(BaseModel):
    """One transparency-log entry: ``{kind, id, digest, at}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LogKind
    id: str = Field(min_length=1, max_length=200)
    digest: str = Field(pattern=HEX_SHA256_PATTERN)
    at: str

    @field_validator("at")
    @classmethod
    def _at_is_rfc3339_utc(cls, value: str) -> str:
        if _RFC3339_UTC.fullmatch(value) is None:
            raise ValueError("at must be RFC 3339 UTC ending in 'Z'")
        datetime.fromisoformat(value[:19])  # rejects impossible dates such as 2025-02-30
        return value

    @classmethod
    def create(cls, kind: LogKind, id: str, digest: str, at: datetime | None = None) -> LogEntry:
        """Build an entry stamped ``at`` (default: now) with :func:`format_timestamp`."""
        return cls(kind=kind, id=id, digest=digest, at=format_timestamp(at))


def entry_bytes(entry: LogEntry) -> bytes:
    """RFC 8785 canonical JSON of the entry."""
    return canonical_json(entry.model_dump(mode="json"))


def leaf_bytes(entry: LogEntry) -> bytes:
    """The Merkle leaf of an entry (SPEC §6): SHA-256 of its canonical JSON, 32 bytes."""
    return hashlib.sha256(entry_bytes(entry)).digest()


def leaf_hash(entry: LogEntry) -> bytes:
    """RFC 9162 leaf hash of the entry: SHA-256(0x00 || leaf_bytes(entry))."""
    return merkle.leaf_hash(leaf_bytes(entry))


def leaf_hash_hex(entry: LogEntry) -> str:
    """:func:`leaf_hash` as lowercase hex."""
    return leaf_hash(entry).hex()
