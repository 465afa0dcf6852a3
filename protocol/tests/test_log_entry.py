import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from chainchat_protocol import merkle
from chainchat_protocol.canonical import canonical_json
from chainchat_protocol.log_entry import (
    LogEntry,
    digest_bytes,
    digest_object,
    entry_bytes,
    format_timestamp,
    leaf_bytes,
    leaf_hash,
    leaf_hash_hex,
)
from chainchat_protocol.vectors import load

DIGEST = "ab" * 32


def test_layering() -> None:
    e = LogEntry(kind="message", id="m1", digest=DIGEST, at="2025-01-01T00:00:00.000Z")
    assert entry_bytes(e) == canonical_json(
        {"kind": "message", "id": "m1", "digest": DIGEST, "at": "2025-01-01T00:00:00.000Z"}
    )
    assert leaf_bytes(e) == hashlib.sha256(entry_bytes(e)).digest()
    assert leaf_hash(e) == merkle.leaf_hash(leaf_bytes(e))
    assert leaf_hash_hex(e) == leaf_hash(e).hex()


def test_shared_vectors() -> None:
    for case in load("log_entry")["entries"]:
        e = LogEntry.model_validate(case["entry"])
        assert entry_bytes(e).decode() == case["entry_bytes"]
        assert leaf_bytes(e).hex() == case["leaf_hex"]
        assert leaf_hash(e).hex() == case["leaf_hash_hex"]


def test_timestamps() -> None:
    moment = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(moment) == "2025-03-04T03:06:07.891Z"
    assert format_timestamp().endswith("Z")
    with pytest.raises(ValueError, match="timezone-aware"):
        format_timestamp(datetime(2025, 1, 1))  # noqa: DTZ001
    e = LogEntry.create("key", "k1", DIGEST, datetime(2025, 1, 1, tzinfo=UTC))
    assert e.at == "2025-01-01T00:00:00.000Z"


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "chat"},
        {"id": ""},
        {"digest": "AB" * 32},
        {"digest": "ab" * 31},
        {"at": "2025-01-01T00:00:00+00:00"},
        {"at": "2025-02-30T00:00:00Z"},
        {"at": "yesterday"},
        {"extra": 1},
    ],
)
def test_rejects_bad_entries(changes: dict[str, object]) -> None:
    base = {"kind": "message", "id": "m1", "digest": DIGEST, "at": "2025-01-01T00:00:00Z"}
    with pytest.raises(ValidationError):
        LogEntry.model_validate({**base, **changes})


def test_digest_helpers() -> None:
    assert digest_bytes(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert digest_object({"b": 1, "a": 2}) == hashlib.sha256(b'{"a":2,"b":1}').hexdigest()
