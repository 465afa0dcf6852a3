"""Bad input never reaches the log: stream messages are parsed strictly, settings are checked."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from pydantic import ValidationError

from chainchat_ledger.entries import MAX_BATCH_BYTES, Rejected, StreamEntries, parse_entry, parse_message
from chainchat_ledger.events import split_ids
from chainchat_ledger.settings import LedgerSettings
from chainchat_protocol.ledger import AppendRequest, EntryRef
from chainchat_service.outbox import MAX_ENTRIES_PER_MESSAGE

DIGEST = "ab" * 32
GOOD = {"kind": "message", "id": "m-1", "digest": DIGEST, "at": "2025-01-02T03:04:05.678Z"}


@dataclass
class FakeMsg:
    subject: str
    data: bytes


def parse(subject: str, body: object) -> object:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_entry(FakeMsg(subject, data))  # type: ignore[arg-type]


def test_a_well_formed_entry_parses() -> None:
    entry = parse("ledger.entry.message.v1", GOOD)
    assert not isinstance(entry, Rejected)


@pytest.mark.parametrize(
    ("subject", "body", "why"),
    [
        ("ledger.entry.bogus.v1", {**GOOD, "kind": "bogus"}, "invalid kind"),
        ("ledger.entry.file.v1", GOOD, "does not match subject"),
        ("ledger.entry.message.v1", {**GOOD, "id": "x" * 201}, "invalid id"),
        ("ledger.entry.message.v1", {**GOOD, "id": ""}, "invalid id"),
        ("ledger.entry.message.v1", {**GOOD, "id": "has space"}, "printable ASCII"),
        ("ledger.entry.message.v1", {**GOOD, "id": "ünïcode"}, "printable ASCII"),
        ("ledger.entry.message.v1", {**GOOD, "digest": "zz"}, "invalid digest"),
        ("ledger.entry.message.v1", {**GOOD, "at": "yesterday"}, "invalid at"),
        ("ledger.entry.message.v1", {**GOOD, "extra": 1}, "invalid extra"),
        ("ledger.entry.message.v1", b"not json", "invalid"),
        ("ledger.entry.message.v1", b"x" * 5000, "exceeds"),
    ],
)
def test_malformed_stream_messages_are_rejected(subject: str, body: object, why: str) -> None:
    result = parse(subject, body)
    assert isinstance(result, Rejected)
    assert why in result.reason


def entries_of(subject: str, body: object) -> StreamEntries | Rejected:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_message(FakeMsg(subject, data))


def good(i: int) -> dict[str, str]:
    return {**GOOD, "id": f"m-{i}"}


def test_a_message_carries_one_entry_or_a_batch_in_order() -> None:
    single = entries_of("ledger.entry.message.v1", GOOD)
    assert isinstance(single, StreamEntries)
    assert [e.id for e in single.entries] == ["m-1"]
    batch = entries_of("ledger.entry.message.v1", [good(i) for i in range(5)])
    assert isinstance(batch, StreamEntries)
    assert [e.id for e in batch.entries] == [f"m-{i}" for i in range(5)]
    assert batch.rejected == []


def test_a_bad_entry_in_a_batch_is_left_out_and_named_the_others_kept() -> None:
    bad = [{**good(1), "digest": "zz"}, {**good(2), "kind": "file"}]
    body = [good(0), *bad, good(3), {**good(4), "id": "a b"}]
    batch = entries_of("ledger.entry.message.v1", body)
    assert isinstance(batch, StreamEntries)
    assert [e.id for e in batch.entries] == ["m-0", "m-3"]
    assert [r.split(":")[0] for r in batch.rejected] == ["entry 1", "entry 2", "entry 4"]
    assert "invalid digest" in batch.rejected[0]
    assert "does not match subject" in batch.rejected[1]
    assert "printable ASCII" in batch.rejected[2]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ([], "1-200 entries, not 0"),
        ([good(i) for i in range(MAX_ENTRIES_PER_MESSAGE + 1)], "not 201"),
        ([{**GOOD, "digest": "zz"}], "invalid digest"),
        ([3, "x"], "entry 0: invalid body"),
        (b"[not json", "not JSON"),
        (b"[" + b" " * MAX_BATCH_BYTES + b"]", "exceeds"),
    ],
)
def test_a_batch_without_a_good_entry_is_rejected(body: object, why: str) -> None:
    result = entries_of("ledger.entry.message.v1", body)
    assert isinstance(result, Rejected), result
    assert why in result.reason


def test_rpc_models_bound_their_input() -> None:
    with pytest.raises(ValidationError):
        AppendRequest(entries=[])
    with pytest.raises(ValidationError):
        AppendRequest.model_validate({"entries": [GOOD] * 1001})
    with pytest.raises(ValidationError):
        EntryRef.model_validate({"kind": "message", "id": "bad\nid"})


def test_anchored_ids_are_split_into_small_events() -> None:
    grouped = {"message": [f"m{i}" for i in range(5)], "file": ["f0", "f1"]}
    parts = split_ids(grouped, 3)
    assert parts == [
        {"message": ["m0", "m1", "m2"]},
        {"message": ["m3", "m4"], "file": ["f0"]},
        {"file": ["f1"]},
    ]
    assert split_ids({}, 3) == [{}]


def test_production_refuses_the_public_dev_key() -> None:
    bus = {"nats_user": "ledger", "nats_password": "p" * 43}
    with pytest.raises(ValidationError, match="public development key"):
        LedgerSettings(environment="production", **bus)
    key = "0x" + "11" * 32
    assert LedgerSettings(environment="production", ledger_private_key=key, **bus).ledger_private_key == key
    with pytest.raises(ValidationError):
        LedgerSettings(ledger_contract_address="0x1234")
