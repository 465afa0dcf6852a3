"""What a ``LEDGER`` stream message carries, checked strictly before anything reaches the log.

On ``ledger.entry.<kind>.v1`` a message is either one log entry (a JSON object: what older
producers and the benchmark send) or several entries of that kind (a JSON array: what the outbox
relay sends for consecutive entries of one kind, one stream write instead of one per entry). Every
entry is checked on its own; a batch with a bad entry still carries its good ones (the bad one is
named in the log), a message with none at all is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nats.aio.msg import Msg
from pydantic import TypeAdapter, ValidationError

from chainchat_protocol.ledger import MAX_ENTRY_BYTES, valid_entry_id
from chainchat_protocol.log_entry import LogEntry
from chainchat_service.jetstream import InvalidEvent, first_error
from chainchat_service.outbox import MAX_ENTRIES_PER_MESSAGE

# a batch of the largest entries still fits NATS's default 1 MiB payload
MAX_BATCH_BYTES = MAX_ENTRIES_PER_MESSAGE * MAX_ENTRY_BYTES
_ENTRY_LIST = TypeAdapter(list[LogEntry])
_ID_RULE = "entry id must be 1-200 printable ASCII characters without spaces"


@dataclass(frozen=True, slots=True)
class Rejected:
    """Why a message (or one entry of a batch) is not a log entry."""

    reason: str


@dataclass(frozen=True, slots=True)
class StreamEntries:
    """The well-formed entries of one stream message, in order, and why others were left out."""

    entries: list[LogEntry]
    rejected: list[str]


def _subject_kind(subject: str) -> str:
    parts = subject.split(".")
    return parts[2] if len(parts) == 4 else ""


def _check(entry: LogEntry, subject: str, kind: str) -> str | None:
    if entry.kind != kind:
        return f"entry kind {entry.kind!r} does not match subject {subject!r}"
    if not valid_entry_id(entry.id):
        return _ID_RULE
    return None


def parse_entry(msg: Msg) -> LogEntry | Rejected:
    """The one LogEntry a single-entry stream message carries, or why it is not one."""
    if len(msg.data) > MAX_ENTRY_BYTES:
        return Rejected(f"payload of {len(msg.data)} bytes exceeds {MAX_ENTRY_BYTES}")
    try:
        entry = LogEntry.model_validate_json(msg.data)
    except ValidationError as exc:
        return Rejected(first_error(exc))
    problem = _check(entry, msg.subject, _subject_kind(msg.subject))
    return Rejected(problem) if problem else entry


def parse_message(msg: Msg) -> StreamEntries | Rejected:
    """The entries of a stream message (one object or a batch), or why it carries none."""
    if msg.data[:1] != b"[":
        single = parse_entry(msg)
        return single if isinstance(single, Rejected) else StreamEntries([single], [])
    if len(msg.data) > MAX_BATCH_BYTES:
        return Rejected(f"batch of {len(msg.data)} bytes exceeds {MAX_BATCH_BYTES}")
    try:
        parsed: list[LogEntry | Rejected] = list(_ENTRY_LIST.validate_json(msg.data))
    except ValidationError:
        each = _parse_each(msg.data)  # one bad entry must not cost the good ones beside it
        if isinstance(each, Rejected):
            return each
        parsed = each
    if not 1 <= len(parsed) <= MAX_ENTRIES_PER_MESSAGE:
        return Rejected(f"a batch holds 1-{MAX_ENTRIES_PER_MESSAGE} entries, not {len(parsed)}")
    kind = _subject_kind(msg.subject)
    good: list[LogEntry] = []
    rejected: list[str] = []
    for position, item in enumerate(parsed):
        problem = item.reason if isinstance(item, Rejected) else _check(item, msg.subject, kind)
        if problem:
            rejected.append(f"entry {position}: {problem}")
        else:
            assert isinstance(item, LogEntry)
            good.append(item)
    if not good:
        return Rejected("; ".join(rejected[:3]))
    return StreamEntries(good, rejected)


def _parse_each(data: bytes) -> list[LogEntry | Rejected] | Rejected:
    try:
        items = json.loads(data)
    except ValueError:
        return Rejected("invalid body: not JSON")
    if not isinstance(items, list) or len(items) > MAX_ENTRIES_PER_MESSAGE:
        return Rejected(f"invalid body: not a list of 1-{MAX_ENTRIES_PER_MESSAGE} entries")
    out: list[LogEntry | Rejected] = []
    for item in items:
        try:
            out.append(LogEntry.model_validate(item))
        except ValidationError as exc:
            out.append(Rejected(first_error(exc)))
    return out


def decode_message(msg: Msg) -> StreamEntries:
    """``parse_message`` as the stream consumer's decoder."""
    parsed = parse_message(msg)
    if isinstance(parsed, Rejected):
        raise InvalidEvent(parsed.reason)
    return parsed
