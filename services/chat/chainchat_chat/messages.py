"""Messages: accept an envelope the server cannot read, number it, keep it, delete it.

A send is checked structurally (the ``Envelope`` model), against the path and the caller, and
against the member devices auth knows now (every one must be a recipient). It then gets the next
gap-free ``seq`` of its conversation in one transaction with the stored row and its ``message`` log
entry in the outbox. ``client_id`` makes a retried send return the first result.

Deleting keeps the row as a tombstone (seq, sender, times) without ciphertext and logs a
``tombstone`` entry whose digest is the deleted envelope's digest: the log keeps proving which
message existed, and that it was deleted.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_chat import store
from chainchat_chat.directory import Directory
from chainchat_chat.group_commit import BatchConflict, GroupCommit, MembersChanged, Pending
from chainchat_chat.models import Member, Message
from chainchat_chat.notify import Notifier
from chainchat_chat.service import conversation_not_found, load_membership, new_id
from chainchat_protocol.chat import (
    ChatErrorCode,
    ChatSubject,
    DeletedFrame,
    DeleteMessageRequest,
    History,
    HistoryRequest,
    MessageDeleted,
    MessageRemoved,
    MessageView,
    PostMessageRequest,
    SendResult,
)
from chainchat_protocol.envelope import Envelope, envelope_bytes
from chainchat_protocol.errors import Conflict, ErrorCode, Forbidden, NotFound, Unavailable, ValidationFailed
from chainchat_protocol.log_entry import LogEntry, digest_bytes, format_timestamp
from chainchat_protocol.rpc import fitting
from chainchat_service.db import Database, as_utc, storage_full, storage_full_error, utcnow
from chainchat_service.logging import get_logger
from chainchat_service.outbox import log_entry_message, outbox_message

log = get_logger(__name__)


@dataclass(frozen=True)
class _Stored:
    result: SendResult
    members: list[str]
    new: bool


class MessageService:
    def __init__(
        self,
        db: Database,
        directory: Directory,
        notifier: Notifier,
        *,
        on_commit: Callable[[], None] = lambda: None,
        max_attempts: int = 10,
        member_cache_size: int = 10_000,
    ) -> None:
        self.db = db
        self.directory = directory
        self.notifier = notifier
        # wakes the outbox relay so log entries leave right after the commit
        self.on_commit = on_commit
        self.max_attempts = max_attempts
        # members per conversation as the last transaction saw them: only a first guess, every
        # send is checked again against the members read under the conversation's lock
        self._members: dict[str, list[str]] = {}
        self._member_cache_size = member_cache_size
        self.commits = GroupCommit(db, on_members=self._remember_members)

    async def post(self, req: PostMessageRequest) -> SendResult:
        fresh = False
        for _ in range(4):
            # membership first: a stranger learns nothing, not even that the header is wrong
            members = await self._member_ids(req.conversation_id, fresh=fresh)
            if req.user_id not in members:
                if not fresh:  # the cache may predate the caller joining
                    fresh = True
                    continue
                raise conversation_not_found()
            _check_header(req)
            problem = await self._recipient_problem(req.envelope, members)
            if problem is not None:
                if not fresh:  # or the members changed since the cache saw them
                    fresh = True
                    continue
                if req.client_id is not None and (done := await self._earlier(req)) is not None:
                    return done  # a retry of a send stored before the devices changed
                raise ValidationFailed(problem[1], code=problem[0])
            try:
                stored = await self._store(req, members)
            except MembersChanged:
                fresh = True
                continue
            if stored.new:
                self.on_commit()
                frame = message_frame(req.conversation_id, envelope_bytes(req.envelope), stored.result)
                await self.notifier.deliver_encoded(stored.members, "message", frame)
            return stored.result
        raise Conflict("the conversation's members keep changing; retry", code=ErrorCode.CONFLICT)

    async def _member_ids(self, conversation_id: str, *, fresh: bool) -> list[str]:
        cached = None if fresh else self._members.get(conversation_id)
        if cached is not None:
            return cached
        async with self.db.engine.connect() as conn:
            members = await store.member_ids(conn, conversation_id)
        self._remember_members(conversation_id, members)
        return members

    def _remember_members(self, conversation_id: str, members: list[str]) -> None:
        if len(self._members) >= self._member_cache_size and conversation_id not in self._members:
            self._members.clear()  # bounded; refilled by the next sends
        self._members[conversation_id] = members

    def forget_members(self, conversation_id: str) -> None:
        """Membership of the conversation changed in this instance: read it afresh next time."""
        self._members.pop(conversation_id, None)

    async def _earlier(self, req: PostMessageRequest) -> SendResult | None:
        async with self.db.engine.connect() as conn:
            return await store.by_client_id(conn, req)

    async def _recipient_problem(self, env: Envelope, members: Collection[str]) -> tuple[str, str] | None:
        problem = _recipient_problem(env, members, await self.directory.devices(members))
        if problem is not None:
            # cached keys may be stale (a device revoked a moment ago): decide on fresh ones
            problem = _recipient_problem(env, members, await self.directory.devices(members, fresh=True))
        return problem

    async def _store(self, req: PostMessageRequest, members: list[str]) -> _Stored:
        canonical = envelope_bytes(req.envelope)
        text, digest = canonical.decode(), digest_bytes(canonical)
        try:
            result, new = await self.commits.store(Pending(req, text, digest, members))
        except BatchConflict:
            return await self._store_alone(req, text, digest, members)
        return _Stored(result, members, new=new)

    async def _store_alone(
        self, req: PostMessageRequest, text: str, digest: str, members: list[str]
    ) -> _Stored:
        """One send in its own transaction: after its batch hit a unique constraint."""
        for attempt in range(self.max_attempts):
            try:
                async with self.db.write_gate, self.db.engine.begin() as conn:
                    return _Stored(await _insert(conn, req, text, digest, members), members, new=True)
            except IntegrityError:
                # the same client_id committed concurrently, or a seq collided: answer or retry
                if req.client_id is not None and (done := await self._earlier(req)) is not None:
                    return _Stored(done, members, new=False)
            except OperationalError as exc:  # SQLite busy, PostgreSQL deadlock or serialization
                if storage_full(exc):  # no retry frees a full disk
                    raise storage_full_error() from None
                log.info("message_store_retry", attempt=attempt, error=type(exc.orig).__name__)
            await asyncio.sleep(random.uniform(0, min(0.005 * 2**attempt, 0.5)))
        raise Unavailable("the conversation is too busy; retry", code=ChatErrorCode.STORAGE_BUSY)

    async def history(self, req: HistoryRequest) -> History:
        """Ascending by seq. With ``after_seq``: the first ``limit`` after it (catching up);
        without: the last ``limit`` (before ``before_seq`` if given), i.e. scrolling back. A page
        stops early when the next message would not fit in one bus reply (``has_more``)."""
        async with self.db.session() as session:
            _, me = await load_membership(session, req.conversation_id, req.user_id)
            query = select(Message).where(
                Message.conversation_id == req.conversation_id,
                col(Message.seq) > max(me.joined_seq, req.after_seq or 0),
            )
            if req.before_seq is not None:
                query = query.where(col(Message.seq) < req.before_seq)
            ascending = req.after_seq is not None
            order = col(Message.seq).asc() if ascending else col(Message.seq).desc()
            rows = list((await session.exec(query.order_by(order).limit(req.limit + 1))).all())
        views = [stored_view(m) for m in rows[: req.limit]]
        page = views[: fitting(views)]  # nearest to the reading position first
        if not ascending:
            page.reverse()
        return History(messages=page, has_more=len(rows) > len(page))

    async def delete(self, req: DeleteMessageRequest) -> MessageRemoved:
        async with self.db.session() as session:
            msg = await session.get(Message, req.message_id)
            if msg is None or not (req.is_admin or await _visible(session, msg, req.user_id)):
                raise NotFound("message not found", code=ChatErrorCode.MESSAGE_NOT_FOUND)
            if msg.sender_id != req.user_id and not req.is_admin:
                raise Forbidden(
                    "only the sender or an admin may delete a message", code=ChatErrorCode.NOT_MESSAGE_SENDER
                )
            newly = msg.deleted_at is None and await _tombstone(session, msg, req.user_id)
            await session.commit()
            await session.refresh(msg)
            members = await _member_ids(session, msg.conversation_id) if newly else []
        if msg.deleted_at is None:  # pragma: no cover - the UPDATE above or an earlier one set it
            raise Conflict("the message changed concurrently; retry", code=ErrorCode.CONFLICT)
        if newly:
            self.on_commit()
            frame = DeletedFrame(conversation_id=msg.conversation_id, message_id=msg.id, seq=msg.seq)
            await self.notifier.deliver(members, frame)
        return MessageRemoved(
            message_id=msg.id, conversation_id=msg.conversation_id, seq=msg.seq,
            deleted_at=format_timestamp(as_utc(msg.deleted_at)),
        )  # fmt: skip


def _check_header(req: PostMessageRequest) -> None:
    if req.envelope.conversation_id != req.conversation_id:
        raise ValidationFailed(
            "the envelope's conversation_id does not match the conversation",
            code=ChatErrorCode.CONVERSATION_MISMATCH,
        )
    if req.envelope.sender_id != req.user_id:
        raise ValidationFailed(
            "the envelope's sender_id is not the caller", code=ChatErrorCode.SENDER_MISMATCH
        )


def _recipient_problem(
    env: Envelope, members: Collection[str], devices: dict[str, frozenset[str]]
) -> tuple[str, str] | None:
    """Why the recipients do not fit the members' current devices, or None when they do.

    Extra key ids of members are tolerated (a device revoked while the message was sealed); a
    recipient who is not a member, or a current member device without an entry, is not."""
    if env.sender_key_id not in devices.get(env.sender_id, frozenset()):
        return ChatErrorCode.UNKNOWN_SENDER_KEY, "sender_key_id is not a current device key of the sender"
    member_set = set(members)
    strangers = sorted({r.user_id for r in env.recipients} - member_set)
    if strangers:
        return ChatErrorCode.RECIPIENTS_MISMATCH, f"recipients who are not members: {', '.join(strangers)}"
    sealed_to = {(r.user_id, r.key_id) for r in env.recipients}
    missing = sorted(f"{u}/{k}" for u in member_set for k in devices.get(u, ()) if (u, k) not in sealed_to)
    if missing:
        return (
            ChatErrorCode.RECIPIENTS_MISMATCH,
            f"member devices missing from recipients: {', '.join(missing)}",
        )
    return None


async def _member_ids(session: AsyncSession, conversation_id: str) -> list[str]:
    rows = await session.exec(select(Member.user_id).where(Member.conversation_id == conversation_id))
    return sorted(rows.all())


async def _insert(
    conn: AsyncConnection, req: PostMessageRequest, text: str, digest: str, members: list[str]
) -> SendResult:
    now = utcnow()
    seq = await store.next_seq(conn, req.conversation_id, now)  # first write: locks the conversation
    if seq is None:
        raise conversation_not_found()
    if await store.member_ids(conn, req.conversation_id) != members:
        raise MembersChanged
    return await store.insert_message(conn, req, new_id(), seq, text, digest, now)


async def _visible(session: AsyncSession, msg: Message, user_id: str) -> bool:
    member = await session.get(Member, (msg.conversation_id, user_id))
    return member is not None and msg.seq > member.joined_seq


async def _tombstone(session: AsyncSession, msg: Message, user_id: str) -> bool:
    """Drop the ciphertext, log the deletion; False when a concurrent delete won."""
    now = utcnow()
    result = await session.exec(
        update(Message)
        .where(col(Message.id) == msg.id, col(Message.deleted_at).is_(None))
        .values(envelope=None, deleted_at=now, deleted_by=user_id)
    )
    if result.rowcount == 0:
        return False
    session.add(log_entry_message(LogEntry.create("tombstone", msg.id, msg.digest, now)))
    event = MessageDeleted(
        message_id=msg.id, conversation_id=msg.conversation_id, file_ids=json.loads(msg.file_ids)
    )
    session.add(outbox_message(ChatSubject.MESSAGE_DELETED, event, msg_id=f"deleted:{msg.id}"))
    return True


def _timestamp(moment: datetime) -> str:
    return format_timestamp(as_utc(moment))


def _send_result(msg: Message) -> SendResult:
    return SendResult(
        message_id=msg.id, conversation_id=msg.conversation_id, seq=msg.seq, digest=msg.digest,
        created_at=_timestamp(msg.created_at),
    )  # fmt: skip


def _meta(result: SendResult) -> dict[str, object]:
    """Server metadata a stored or delivered message carries beside its envelope fields."""
    return {
        "message_id": result.message_id,
        "seq": result.seq,
        "created_at": result.created_at,
        "deleted": False,
    }


def message_frame(conversation_id: str, envelope: bytes, result: SendResult) -> bytes:
    """The ``message`` frame (:class:`MessageFrame`: the envelope's fields and :func:`_meta`) as
    JSON, spliced from the envelope's canonical bytes: dumping the envelope again per message cost
    more than everything else the delivery does. The envelope has no field of ``_meta``'s names
    (``extra="forbid"``), so the merged object has no duplicate key."""
    meta = json.dumps(_meta(result), separators=(",", ":")).encode()
    return b"".join((
        b'{"type":"message","conversation_id":', json.dumps(conversation_id).encode(),
        b',"message":', envelope[:-1], b",", meta[1:], b"}",
    ))  # fmt: skip


def stored_view(msg: Message) -> MessageView:
    """A stored row as clients see it: envelope plus metadata, or a tombstone."""
    meta = {"message_id": msg.id, "seq": msg.seq, "created_at": _timestamp(msg.created_at)}
    if msg.envelope is None:
        deleted_at = _timestamp(msg.deleted_at) if msg.deleted_at else None
        return MessageView(
            **meta,
            deleted=True,
            deleted_at=deleted_at,
            conversation_id=msg.conversation_id,
            sender_id=msg.sender_id,
        )
    return MessageView(**meta, **json.loads(msg.envelope))
