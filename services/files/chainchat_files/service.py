"""The files domain: uploads to IPFS, who may read what, message references and unpinning.

No NATS or HTTP framework here: the IPFS client and the membership check are passed in.

References: a file is referenced by the messages that declared it (``MessagePosted.file_ids``).
When the chat service reports a deletion, the (file, message) pair is *released*; a file whose
references are all released is deleted: its record is marked, a ``tombstone`` log entry goes to the
outbox and its CID is queued for unpinning. Pairs are kept, not removed, so a redelivered event
changes nothing. A file that no message declared is kept for ``FILES_UNDECLARED_TTL_S`` (the
uploader may still send it), then deleted the same way (:meth:`FileService.sweep_undeclared`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Counter
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_files.ipfs import IpfsError, IpfsUnavailable, KuboClient
from chainchat_files.models import FileRecord, FileReference, UnpinTask, new_file_id
from chainchat_files.settings import FilesSettings
from chainchat_files.streams import FileTooLarge, UploadMeter
from chainchat_protocol.errors import NotFound, Unavailable
from chainchat_protocol.files import FilesErrorCode
from chainchat_protocol.log_entry import LogEntry
from chainchat_service.db import Database, utcnow
from chainchat_service.logging import get_logger
from chainchat_service.outbox import log_entry_message

log = get_logger(__name__)

IsMember = Callable[[str, str], Awaitable[bool]]

UPLOADS = Counter("chainchat_files_uploads_total", "Upload attempts by outcome", ["outcome"])
UPLOADED_BYTES = Counter("chainchat_files_uploaded_bytes_total", "Bytes stored on IPFS")
DELETED = Counter("chainchat_files_deleted_total", "Files deleted after their last message reference went")


def file_not_found() -> NotFound:
    # one answer for "no such file" and "not yours to see", so ids cannot be probed
    return NotFound("no such file", code=FilesErrorCode.FILE_NOT_FOUND)


@dataclass(eq=False)
class FileService:
    db: Database
    ipfs: KuboClient
    settings: FilesSettings
    is_member: IsMember = field(kw_only=True)
    # wakes the outbox relay / the IPFS maintenance loop after a commit that gave them work
    on_commit: Callable[[], None] = field(default=lambda: None, kw_only=True)
    on_unpin_queued: Callable[[], None] = field(default=lambda: None, kw_only=True)

    # ---------------------------------------------------------------- upload

    async def upload(self, meter: UploadMeter, *, uploader_id: str, conversation_id: str) -> FileRecord:
        """Stream ``meter`` to IPFS, then record the file and its ``file`` log entry in one transaction.

        Nothing is recorded unless IPFS confirmed the upload; whatever IPFS pinned for an upload that
        then fails is unpinned again.
        """
        file_id = new_file_id()
        try:
            cid = await self.ipfs.add(meter, filename=file_id)
        except FileTooLarge:
            UPLOADS.labels("too_large").inc()
            self.on_unpin_queued()  # the node holds unpinned blocks of the partial upload: collect them
            raise
        except IpfsUnavailable:
            UPLOADS.labels("ipfs_unavailable").inc()
            raise
        except IpfsError as exc:
            UPLOADS.labels("ipfs_error").inc()
            log.warning("ipfs_add_failed", file_id=file_id, error=str(exc))
            raise Unavailable("the IPFS node refused the upload", code=FilesErrorCode.IPFS_ERROR) from exc
        except BaseException:
            # client gone or request cancelled half way: the node never completes (never pins) it
            UPLOADS.labels("aborted").inc()
            self.on_unpin_queued()
            raise
        record = FileRecord(
            id=file_id,
            conversation_id=conversation_id,
            uploader_id=uploader_id,
            cid=cid,
            size=meter.size,
            sha256=meter.hexdigest(),
        )
        await self._record_upload(record)
        UPLOADS.labels("ok").inc()
        UPLOADED_BYTES.inc(record.size)
        log.info("file_uploaded", file_id=file_id, cid=cid, size=record.size, conversation_id=conversation_id)
        return record

    async def _record_upload(self, record: FileRecord) -> None:
        entry = LogEntry.create("file", record.id, record.sha256, at=record.created_at)
        try:
            async with self.db.session() as session:
                session.add(record)
                session.add(log_entry_message(entry))
                await session.commit()
        except Exception as exc:
            UPLOADS.labels("db_error").inc()
            log.error(
                "file_record_failed", file_id=record.id, cid=record.cid, error=str(exc) or type(exc).__name__
            )
            await self.discard_cid(record.cid, "record_failed")
            raise Unavailable(
                "the file could not be recorded; try again", code=FilesErrorCode.FILES_UNAVAILABLE
            ) from exc
        self.on_commit()

    async def discard_cid(self, cid: str, reason: str) -> None:
        """Unpin ``cid`` now if possible, else leave a task for the unpin loop."""
        try:
            await self.unpin_if_unused(cid)
            self.on_unpin_queued()
            return
        except (IpfsUnavailable, IpfsError) as exc:
            log.warning("unpin_deferred", cid=cid, reason=reason, error=str(exc))
        try:
            async with self.db.session() as session:
                session.add(UnpinTask(cid=cid, reason=reason))
                await session.commit()
            self.on_unpin_queued()
        except Exception as exc:  # noqa: BLE001 - nothing more we can do; the pin leaks and is logged
            log.error("unpin_task_lost", cid=cid, reason=reason, error=str(exc) or type(exc).__name__)

    async def _cid_in_use(self, cid: str) -> bool:
        async with self.db.session() as session:
            query = (
                select(func.count())
                .select_from(FileRecord)
                .where(FileRecord.cid == cid, col(FileRecord.deleted_at).is_(None))
            )
            return bool((await session.exec(query)).one())

    async def unpin_if_unused(self, cid: str) -> bool:
        """Unpin ``cid`` unless a live record uses it (identical ciphertext uploaded twice).

        Re-checks after unpinning and pins again if an upload of the same bytes was recorded in
        between, so a live file never loses its pin to a concurrent cleanup.
        """
        if await self._cid_in_use(cid):
            return False
        removed = await self.ipfs.pin_rm(cid)
        if await self._cid_in_use(cid):
            await self.ipfs.pin_add(cid)
            return False
        return removed

    # ---------------------------------------------------------------- access

    async def readable(self, user_id: str, file_id: str) -> FileRecord:
        """The live record of ``file_id`` if ``user_id`` is a current member of its conversation."""
        async with self.db.session() as session:
            record = await session.get(FileRecord, file_id)
        if record is None or record.deleted_at is not None:
            raise file_not_found()
        if not await self.is_member(user_id, record.conversation_id):
            raise file_not_found()
        return record

    # ---------------------------------------------------------------- references

    async def declare_references(self, message_id: str, conversation_id: str, file_ids: Iterable[str]) -> int:
        """Record that ``message_id`` carries these files; unknown files and files of another
        conversation are ignored (a sender cannot pin someone else's file). Idempotent."""
        added = 0
        async with self.db.session() as session:
            for file_id in dict.fromkeys(file_ids):
                record = await _locked_record(session, file_id)
                if record is None or record.conversation_id != conversation_id or record.deleted_at:
                    continue
                if await session.get(FileReference, (file_id, message_id)) is None:
                    session.add(FileReference(file_id=file_id, message_id=message_id))
                    added += 1
            await session.commit()
        return added

    async def release_references(
        self, message_id: str, conversation_id: str, file_ids: Iterable[str]
    ) -> list[str]:
        """The message is deleted: release its references; delete files left without any.

        Returns the ids of the files deleted now. A redelivered event finds its pairs released.
        """
        deleted: list[str] = []
        async with self.db.session() as session:
            for file_id in dict.fromkeys(file_ids):
                record = await _locked_record(session, file_id)
                if record is None or record.conversation_id != conversation_id:
                    continue
                if not await _release_pair(session, file_id, message_id):
                    continue
                if record.deleted_at is None and await _active_references(session, file_id) == 0:
                    _mark_deleted(session, record)
                    deleted.append(file_id)
            await session.commit()
        if deleted:
            DELETED.inc(len(deleted))
            log.info("files_deleted", file_ids=deleted, message_id=message_id)
            self.on_commit()
            self.on_unpin_queued()
        return deleted

    # ---------------------------------------------------------------- sweeping

    async def sweep_undeclared(self, uploaded_before: datetime, limit: int = 200) -> list[str]:
        """Delete files that no message declared and that were uploaded before ``uploaded_before``
        (uploads never sent). Each is re-checked under its row lock, so a declaration racing the
        sweep wins or finds the file deleted, never half of each."""
        declared = select(FileReference.file_id).where(FileReference.file_id == FileRecord.id).exists()
        query = (
            select(FileRecord.id)
            .where(col(FileRecord.deleted_at).is_(None), col(FileRecord.created_at) < uploaded_before)
            .where(~declared)
            .limit(limit)
        )
        async with self.db.session() as session:
            candidates = list((await session.exec(query)).all())
        deleted: list[str] = []
        for file_id in candidates:
            async with self.db.session() as session:
                record = await _locked_record(session, file_id)
                if record is None or record.deleted_at is not None or await _ever_declared(session, file_id):
                    continue
                _mark_deleted(session, record, reason="undeclared")
                await session.commit()
            deleted.append(file_id)
        if deleted:
            DELETED.inc(len(deleted))
            log.info("files_swept", file_ids=deleted, reason="undeclared")
            self.on_commit()
            self.on_unpin_queued()
        return deleted

    async def unused_cids(self, cids: Iterable[str]) -> set[str]:
        """Those of ``cids`` that no live file record uses."""
        wanted = list(dict.fromkeys(cids))
        used: set[str] = set()
        async with self.db.session() as session:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                query = select(FileRecord.cid).where(
                    col(FileRecord.cid).in_(chunk), col(FileRecord.deleted_at).is_(None)
                )
                used.update((await session.exec(query)).all())
        return set(wanted) - used

    # ---------------------------------------------------------------- unpinning

    async def pending_unpins(self, limit: int = 50) -> list[UnpinTask]:
        async with self.db.session() as session:
            query = (
                select(UnpinTask)
                .where(col(UnpinTask.done_at).is_(None))
                .order_by(col(UnpinTask.id))
                .limit(limit)
            )
            return list((await session.exec(query)).all())

    async def process_unpin(self, task: UnpinTask) -> None:
        """Unpin one task's CID and mark it done; IPFS errors are recorded and re-raised."""
        try:
            removed = await self.unpin_if_unused(task.cid)
        except (IpfsUnavailable, IpfsError) as exc:
            task.attempts += 1
            task.last_error = str(exc)[:300]
            await self._save_task(task)
            raise
        task.done_at = utcnow()
        await self._save_task(task)
        log.info("cid_unpinned", cid=task.cid, reason=task.reason, was_pinned=removed)

    async def _save_task(self, task: UnpinTask) -> None:
        async with self.db.session() as session:
            session.add(task)
            await session.commit()


async def _locked_record(session: AsyncSession, file_id: str) -> FileRecord | None:
    """The file row, locked for this transaction (PostgreSQL): two instances handling deletions of
    two messages of the same file must not both see the other's reference still active."""
    query = select(FileRecord).where(FileRecord.id == file_id).with_for_update()
    return (await session.exec(query)).first()


async def _release_pair(session: AsyncSession, file_id: str, message_id: str) -> bool:
    """Release (file, message); False when it was already released (a redelivered event)."""
    ref = await session.get(FileReference, (file_id, message_id))
    if ref is None:
        # deleted before we saw it posted (or posted before references were tracked)
        session.add(FileReference(file_id=file_id, message_id=message_id, released_at=utcnow()))
        return True
    if ref.released_at is not None:
        return False
    ref.released_at = utcnow()
    session.add(ref)
    return True


async def _ever_declared(session: AsyncSession, file_id: str) -> bool:
    query = select(func.count()).select_from(FileReference).where(FileReference.file_id == file_id)
    return bool((await session.exec(query)).one())


async def _active_references(session: AsyncSession, file_id: str) -> int:
    await session.flush()
    query = (
        select(func.count())
        .select_from(FileReference)
        .where(FileReference.file_id == file_id, col(FileReference.released_at).is_(None))
    )
    return int((await session.exec(query)).one())


def _mark_deleted(session: AsyncSession, record: FileRecord, reason: str = "deleted") -> None:
    record.deleted_at = utcnow()
    session.add(record)
    # the log proves the file existed; the tombstone proves it was removed, and which bytes
    session.add(
        log_entry_message(LogEntry.create("tombstone", record.id, record.sha256, at=record.deleted_at))
    )
    session.add(UnpinTask(cid=record.cid, reason=reason))
