"""The files domain on a real database (SQLite and PostgreSQL) with an in-memory Kubo API.

``kubo`` is conftest's ``FakeKubo`` (a conftest cannot be imported by name, hence ``Any``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from chainchat_files import service as service_module
from chainchat_files.ipfs import IpfsUnavailable
from chainchat_files.maintenance import IpfsMaintenance
from chainchat_files.models import FileRecord, FileReference, UnpinTask
from chainchat_files.service import FileService
from chainchat_files.streams import FileTooLarge, UploadMeter
from chainchat_protocol.errors import NotFound, Unavailable
from chainchat_service.db import Database
from chainchat_service.outbox import OutboxMessage


async def _chunks(data: bytes, piece: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), piece):
        yield data[i : i + piece]


async def _upload(
    service: FileService, data: bytes, conversation: str = "c1", user: str = "alice"
) -> FileRecord:
    meter = UploadMeter(_chunks(data), service.settings.max_file_bytes)
    return await service.upload(meter, uploader_id=user, conversation_id=conversation)


async def _rows(db: Database, model: Any) -> list[Any]:
    async with db.session() as session:
        return list((await session.exec(select(model))).all())


async def _outbox(db: Database, msg_id: str) -> dict[str, Any]:
    async with db.session() as session:
        row = (await session.exec(select(OutboxMessage).where(OutboxMessage.msg_id == msg_id))).one()
    return dict(json.loads(row.payload))


async def test_upload_records_the_file_and_its_log_entry(
    service: FileService, db: Database, kubo: Any
) -> None:
    data = b"ciphertext " * 500
    record = await _upload(service, data)
    assert record.size == len(data)
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert kubo.blobs[record.cid] == data
    assert record.cid in kubo.pins
    [stored] = await _rows(db, FileRecord)
    assert (stored.id, stored.uploader_id, stored.conversation_id) == (record.id, "alice", "c1")
    entry = await _outbox(db, f"file:{record.id}")
    assert (entry["kind"], entry["id"], entry["digest"]) == ("file", record.id, record.sha256)


async def test_too_large_records_nothing(service: FileService, db: Database, kubo: Any) -> None:
    with pytest.raises(FileTooLarge):
        await _upload(service, b"x" * (service.settings.max_file_bytes + 1))
    assert await _rows(db, FileRecord) == []
    assert await _rows(db, OutboxMessage) == []
    assert kubo.pins == set()


async def test_ipfs_down_records_nothing(service: FileService, db: Database, kubo: Any) -> None:
    kubo.down = True
    with pytest.raises(IpfsUnavailable) as info:
        await _upload(service, b"data")
    assert (info.value.http_status, info.value.code) == (503, "ipfs_unavailable")
    assert await _rows(db, FileRecord) == []


async def test_a_failed_record_unpins_what_ipfs_stored(
    service: FileService, db: Database, kubo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await _upload(service, b"first")
    # the next upload gets an id that already exists: the insert fails after IPFS pinned the bytes
    monkeypatch.setattr(service_module, "new_file_id", lambda: first.id)
    with pytest.raises(Unavailable) as info:
        await _upload(service, b"second")
    assert info.value.code == "files_unavailable"
    assert kubo.pins == {first.cid}
    assert [r.id for r in await _rows(db, FileRecord)] == [first.id]


async def test_only_members_read(service: FileService, members: Any) -> None:
    record = await _upload(service, b"members only")
    assert (await service.readable("bob", record.id)).id == record.id
    for user, file_id in (("mallory", record.id), ("alice", "nope")):
        with pytest.raises(NotFound) as info:
            await service.readable(user, file_id)
        assert info.value.code == "file_not_found"
    members.of["c1"].discard("bob")
    with pytest.raises(NotFound):
        await service.readable("bob", record.id)


async def test_references_are_counted_once_per_message(service: FileService, db: Database, kubo: Any) -> None:
    record = await _upload(service, b"attachment")
    assert await service.declare_references("m1", "c1", [record.id, record.id, "unknown"]) == 1
    assert await service.declare_references("m1", "c1", [record.id]) == 0  # redelivered
    assert await service.declare_references("m2", "c1", [record.id]) == 1
    assert await service.declare_references("m3", "c2", [record.id]) == 0  # another conversation's file

    assert await service.release_references("m1", "c1", [record.id]) == []
    assert await service.release_references("m1", "c1", [record.id]) == []  # redelivered: no double count
    assert (await service.readable("alice", record.id)).deleted_at is None

    assert await service.release_references("m2", "c1", [record.id]) == [record.id]
    assert await service.release_references("m2", "c1", [record.id]) == []
    with pytest.raises(NotFound):
        await service.readable("alice", record.id)
    tombstone = await _outbox(db, f"tombstone:{record.id}")
    assert (tombstone["kind"], tombstone["digest"]) == ("tombstone", record.sha256)
    [task] = await _rows(db, UnpinTask)
    assert (task.cid, task.reason, task.done_at) == (record.cid, "deleted", None)

    await service.process_unpin(task)
    assert record.cid not in kubo.pins
    await service.process_unpin(task)  # already unpinned: still fine


async def test_a_deletion_seen_before_its_post_still_counts(service: FileService, db: Database) -> None:
    record = await _upload(service, b"late post")
    assert await service.release_references("m1", "c1", [record.id]) == [record.id]
    assert await service.declare_references("m1", "c1", [record.id]) == 0  # late: the file is gone
    refs = await _rows(db, FileReference)
    assert [(r.message_id, r.released_at is not None) for r in refs] == [("m1", True)]


async def test_another_conversation_cannot_release(service: FileService) -> None:
    record = await _upload(service, b"mine")
    assert await service.release_references("evil", "c2", [record.id]) == []
    assert (await service.readable("alice", record.id)).deleted_at is None


async def test_shared_ciphertext_stays_pinned_while_a_record_uses_it(service: FileService, kubo: Any) -> None:
    one = await _upload(service, b"same bytes")
    two = await _upload(service, b"same bytes")
    assert one.cid == two.cid
    assert one.id != two.id
    await service.declare_references("m1", "c1", [one.id])
    await service.release_references("m1", "c1", [one.id])
    [task] = await service.pending_unpins()
    await service.process_unpin(task)
    assert one.cid in kubo.pins  # two still needs it
    assert await service.pending_unpins() == []


async def test_maintenance_retries_unpins_after_an_outage(
    service: FileService, db: Database, kubo: Any
) -> None:
    record = await _upload(service, b"to delete")
    await service.release_references("m1", "c1", [record.id])
    maintenance = IpfsMaintenance(service.ipfs, gc_interval_s=0)
    kubo.down = True
    with pytest.raises(IpfsUnavailable):
        await maintenance.unpin_pending(service)
    [task] = await _rows(db, UnpinTask)
    assert (task.attempts, task.done_at) == (1, None)
    assert task.last_error
    kubo.down = False
    assert await maintenance.unpin_pending(service) == 1
    assert record.cid not in kubo.pins
    done = await _rows(db, UnpinTask)
    assert all(t.done_at is not None for t in done)
    async with db.session() as session:
        left = (await session.exec(select(UnpinTask).where(col(UnpinTask.done_at).is_(None)))).all()
    assert list(left) == []


async def test_maintenance_loop_collects_garbage_after_a_failed_upload(
    service: FileService, kubo: Any
) -> None:
    import asyncio

    maintenance = IpfsMaintenance(service.ipfs, gc_interval_s=0.01)
    task = asyncio.create_task(maintenance.run(service))
    try:
        await asyncio.sleep(0.05)
        assert kubo.gc_runs == 0  # nothing to collect yet
        maintenance.wake()
        for _ in range(100):
            if kubo.gc_runs:
                break
            await asyncio.sleep(0.02)
        assert kubo.gc_runs == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_concurrent_deletions_of_the_last_two_references_delete_the_file(
    service: FileService, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio
    import contextlib

    from sqlalchemy.exc import OperationalError

    count, both_released = service_module._active_references, asyncio.Barrier(2)

    async def slow_count(session: Any, file_id: str) -> int:
        await session.flush()
        # without the row lock both transactions get here with their own release written and
        # then count the other's as still active; with it the second waits, and so times out here
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both_released.wait(), timeout=0.5)
        return await count(session, file_id)

    monkeypatch.setattr(service_module, "_active_references", slow_count)
    record = await _upload(service, b"shared by two messages")
    await service.declare_references("m1", "c1", [record.id])
    await service.declare_references("m2", "c1", [record.id])
    other = FileService(db, service.ipfs, service.settings, is_member=service.is_member)  # a second instance

    async def release(svc: FileService, message_id: str) -> list[str]:
        for _ in range(5):  # JetStream redelivers what failed; SQLite may refuse a concurrent writer
            try:
                return await svc.release_references(message_id, "c1", [record.id])
            except OperationalError:
                await asyncio.sleep(0.05)
        raise AssertionError("never applied")

    results = await asyncio.gather(release(service, "m1"), release(other, "m2"))
    assert sorted(results) == [[], [record.id]]
    with pytest.raises(NotFound):
        await service.readable("alice", record.id)


async def _age(db: Database, record: FileRecord, days: float) -> None:
    async with db.session() as session:
        stored = await session.get(FileRecord, record.id)
        assert stored is not None
        stored.created_at = service_module.utcnow() - timedelta(days=days)
        session.add(stored)
        await session.commit()


async def test_files_never_sent_are_swept_after_the_grace(
    service: FileService, db: Database, kubo: Any
) -> None:
    sent, abandoned, fresh = [await _upload(service, f"file {i}".encode()) for i in range(3)]
    await service.declare_references("m1", "c1", [sent.id])
    await _age(db, sent, 8)
    await _age(db, abandoned, 8)
    maintenance = IpfsMaintenance(service.ipfs, gc_interval_s=0, undeclared_ttl_s=7 * 86400)
    await maintenance.sweep(service)

    with pytest.raises(NotFound):
        await service.readable("alice", abandoned.id)
    assert abandoned.cid not in kubo.pins
    tombstone = await _outbox(db, f"tombstone:{abandoned.id}")
    assert (tombstone["kind"], tombstone["digest"]) == ("tombstone", abandoned.sha256)
    assert [t.reason for t in await _rows(db, UnpinTask)] == ["undeclared"]
    for kept in (sent, fresh):  # declared, or still within the grace
        assert (await service.readable("alice", kept.id)).id == kept.id
        assert kept.cid in kubo.pins
    assert await service.sweep_undeclared(service_module.utcnow()) == [fresh.id]
    assert await service.sweep_undeclared(service_module.utcnow()) == []  # nothing twice


async def test_pins_no_record_uses_are_removed_after_the_grace(service: FileService, kubo: Any) -> None:
    live = await _upload(service, b"a live file")
    kubo.pins |= {"bafkorphan", "bafkcommittedlater"}  # as a crash between add and commit leaves
    maintenance = IpfsMaintenance(service.ipfs, gc_interval_s=0, orphan_grace_s=0.2)
    assert await maintenance.remove_orphan_pins(service) == 0  # seen once: an upload may be in flight
    assert kubo.pins == {live.cid, "bafkorphan", "bafkcommittedlater"}
    async with service.db.session() as session:  # that upload's record commits after all
        session.add(
            FileRecord(
                conversation_id="c1", uploader_id="alice", cid="bafkcommittedlater", size=1, sha256="0" * 64
            )
        )
        await session.commit()
    await asyncio.sleep(0.25)
    assert await maintenance.remove_orphan_pins(service) == 1
    assert kubo.pins == {live.cid, "bafkcommittedlater"}
