"""The consumer's batch handler: stream messages of one entry or many, appended in order in
chunks, each message acknowledged or terminated once for all its entries."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chainchat_ledger import handlers as handlers_module
from chainchat_ledger.app import MIGRATIONS
from chainchat_ledger.entries import StreamEntries
from chainchat_ledger.handlers import LedgerHandlers
from chainchat_ledger.log import TransparencyLog
from chainchat_ledger.settings import LedgerSettings
from chainchat_protocol.log_entry import LogEntry
from chainchat_service.db import Database
from chainchat_service.jetstream import ACK, Received, Term


def entry(i: int, seed: str = "") -> LogEntry:
    return LogEntry.create("message", f"e-{i}", hashlib.sha256(f"{seed}{i}".encode()).hexdigest())


@dataclass
class FakeMsg:
    subject: str = "ledger.entry.message.v1"
    in_progress_calls: int = 0

    async def in_progress(self) -> None:
        self.in_progress_calls += 1

    @property
    def metadata(self) -> Any:
        raise AttributeError("not from a stream")


@pytest.fixture
async def tlog(tmp_path: Path) -> AsyncIterator[TransparencyLog]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await db.migrate(MIGRATIONS)
    log = TransparencyLog(db)
    await log.open()
    yield log
    await db.close()


def received(*events: StreamEntries | None) -> list[Received[StreamEntries]]:
    return [Received(FakeMsg(), e, None if e else "invalid body") for e in events]


async def test_each_message_settles_once_for_all_its_entries_in_chunks(
    tlog: TransparencyLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers_module, "APPEND_CHUNK", 2)
    woken: list[bool] = []
    handlers = LedgerHandlers(tlog, None, None, LedgerSettings(), on_appended=lambda: woken.append(True))
    await tlog.append([entry(0)])
    batch = received(
        StreamEntries([entry(1), entry(2), entry(3)], []),
        None,  # did not decode
        StreamEntries([entry(0, seed="other")], []),  # conflicts with leaf 0: nothing to append
        StreamEntries([entry(3), entry(4)], ["entry 2: invalid digest"]),  # a duplicate and a new one
    )
    outcomes = await handlers.append_entries(batch)
    assert outcomes[0] == ACK
    assert isinstance(outcomes[1], Term)
    assert isinstance(outcomes[2], Term)
    assert outcomes[3] == ACK
    assert tlog.committed_size == 5
    assert [(await tlog.leaf("message", f"e-{i}")).leaf_index for i in range(5)] == [0, 1, 2, 3, 4]
    # five entries in chunks of two: two more transactions after the first, each announced
    assert [item.msg.in_progress_calls for item in batch] == [2, 2, 2, 2]
    assert woken == [True]
