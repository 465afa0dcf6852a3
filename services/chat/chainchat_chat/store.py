"""The send path's SQL, as prepared Core statements on a plain connection (the batch functions on
a synchronous one: a group commit runs whole in ``Database.write_transaction``).

Every message runs these few statements; building them once and skipping the ORM session (identity
map, unit of work, autoflush) halves the CPU a send costs, which is what bounds an instance's rate.

Seq assignment: ``NEXT_SEQ`` increments ``conversation.last_seq`` as the transaction's first write.
On PostgreSQL the UPDATE locks that row until commit, so concurrent senders of one conversation
queue there (other conversations are untouched); on SQLite it takes the database's write lock. The
same transaction inserts the message and its outbox rows, so a seq is never skipped or reused:
a rollback returns it, and ``UNIQUE(conversation_id, seq)`` refuses any writer that bypasses this.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, tuple_, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from chainchat_chat.models import Conversation, Member, Message, OutboxMessage
from chainchat_protocol.chat import ChatSubject, MessagePosted, PostMessageRequest, SendResult
from chainchat_protocol.log_entry import LogEntry, format_timestamp
from chainchat_service.db import as_utc
from chainchat_service.outbox import log_entry_row, outbox_row

_conversation = Conversation.__table__  # type: ignore[attr-defined]
_member = Member.__table__  # type: ignore[attr-defined]
_message = Message.__table__  # type: ignore[attr-defined]
_outbox = OutboxMessage.__table__  # type: ignore[attr-defined]

MEMBER_IDS = (
    select(_member.c.user_id).where(_member.c.conversation_id == bindparam("cid")).order_by(_member.c.user_id)
)
BY_CLIENT_ID = select(_message.c.id, _message.c.seq, _message.c.digest, _message.c.created_at).where(
    _message.c.conversation_id == bindparam("cid"),
    _message.c.sender_id == bindparam("sender"),
    _message.c.client_id == bindparam("client_id"),
)
# the statements of a batch are built once: building an IN query per batch (and its cache key)
# cost more than running it
MEMBERS_OF = (
    select(_member.c.conversation_id, _member.c.user_id)
    .where(_member.c.conversation_id.in_(bindparam("cids", expanding=True)))
    .order_by(_member.c.conversation_id, _member.c.user_id)
)
BY_CLIENT_IDS = select(
    _message.c.conversation_id, _message.c.sender_id, _message.c.client_id, _message.c.id, _message.c.seq,
    _message.c.digest, _message.c.created_at,
).where(
    tuple_(_message.c.conversation_id, _message.c.sender_id, _message.c.client_id).in_(
        bindparam("keys", expanding=True)
    )
)  # fmt: skip
NEXT_SEQ = (
    update(_conversation)
    .where(_conversation.c.id == bindparam("cid"))
    .values(last_seq=_conversation.c.last_seq + 1, last_message_at=bindparam("now"))
    .returning(_conversation.c.last_seq)
)
# the conversation rows of a batch, locked in one statement, in id order (so two writers never
# deadlock): on PostgreSQL ``SELECT … ORDER BY id FOR UPDATE`` takes the row locks as it returns
# the rows; on SQLite a no-op UPDATE takes the database's write lock as the first statement, so a
# second process writing meanwhile makes this one wait instead of failing a read-then-write upgrade
LOCK_CONVERSATIONS_PG = (
    select(_conversation.c.id, _conversation.c.last_seq)
    .where(_conversation.c.id.in_(bindparam("cids", expanding=True)))
    .order_by(_conversation.c.id)
    .with_for_update()
)
LOCK_CONVERSATIONS_SQLITE = (
    update(_conversation)
    .where(_conversation.c.id.in_(bindparam("cids", expanding=True)))
    .values(last_seq=_conversation.c.last_seq)
    .returning(_conversation.c.id, _conversation.c.last_seq)
)
ADVANCE_SEQ = (
    update(_conversation)
    .where(_conversation.c.id == bindparam("cid"))
    .values(last_seq=bindparam("seq"), last_message_at=bindparam("now"))
)
INSERT_MESSAGE = insert(_message)
INSERT_OUTBOX = insert(_outbox)
# sending implies having read everything before: the sender's unread count stays at zero
SENDER_READ = (
    update(_member)
    .where(
        _member.c.conversation_id == bindparam("cid"),
        _member.c.user_id == bindparam("uid"),
        _member.c.read_seq < bindparam("upto"),
    )
    .values(read_seq=bindparam("upto"))
)


async def member_ids(conn: AsyncConnection, conversation_id: str) -> list[str]:
    """The conversation's members, sorted (empty when it does not exist)."""
    return list((await conn.execute(MEMBER_IDS, {"cid": conversation_id})).scalars())


def members_of(conn: Connection, conversation_ids: Sequence[str]) -> dict[str, list[str]]:
    """The sorted members of each conversation (an empty list for one without members)."""
    members: dict[str, list[str]] = {cid: [] for cid in conversation_ids}
    if conversation_ids:
        for cid, user_id in conn.execute(MEMBERS_OF, {"cids": list(conversation_ids)}):
            members[cid].append(user_id)
    return members


def by_client_ids(
    conn: Connection, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], SendResult]:
    """Earlier results of sends keyed ``(conversation_id, sender_id, client_id)`` (retries)."""
    if not keys:
        return {}
    return {
        (row.conversation_id, row.sender_id, row.client_id): SendResult(
            message_id=row.id,
            conversation_id=row.conversation_id,
            seq=row.seq,
            digest=row.digest,
            created_at=format_timestamp(as_utc(row.created_at)),
        )  # fmt: skip
        for row in conn.execute(BY_CLIENT_IDS, {"keys": list(set(keys))})
    }


async def by_client_id(conn: AsyncConnection, req: PostMessageRequest) -> SendResult | None:
    """The result of an earlier send with the same ``client_id`` (a retry), if any."""
    params = {"cid": req.conversation_id, "sender": req.user_id, "client_id": req.client_id}
    row = (await conn.execute(BY_CLIENT_ID, params)).first()
    if row is None:
        return None
    return SendResult(
        message_id=row.id, conversation_id=req.conversation_id, seq=row.seq, digest=row.digest,
        created_at=format_timestamp(as_utc(row.created_at)),
    )  # fmt: skip


def lock_conversations(conn: Connection, conversation_ids: Sequence[str]) -> dict[str, int]:
    """Lock the conversation rows (the transaction's first statement); ``last_seq`` of each that
    exists (a missing id is absent from the result)."""
    if not conversation_ids:
        return {}
    sqlite = conn.dialect.name == "sqlite"
    statement = LOCK_CONVERSATIONS_SQLITE if sqlite else LOCK_CONVERSATIONS_PG
    rows = conn.execute(statement, {"cids": sorted(conversation_ids)})
    return {cid: int(last_seq) for cid, last_seq in rows}


def advance_seqs(conn: Connection, last_seqs: dict[str, int], now: datetime) -> None:
    """Move each locked conversation's ``last_seq`` past the seqs a batch assigned (one
    ``executemany``)."""
    if last_seqs:
        params = [{"cid": cid, "seq": seq, "now": now} for cid, seq in sorted(last_seqs.items())]
        conn.execute(ADVANCE_SEQ, params)


async def next_seq(conn: AsyncConnection, conversation_id: str, now: datetime) -> int | None:
    """Claim the conversation's next seq (None if the conversation is gone)."""
    seq = (await conn.execute(NEXT_SEQ, {"cid": conversation_id, "now": now})).scalar_one_or_none()
    return None if seq is None else int(seq)


async def insert_message(
    conn: AsyncConnection,
    req: PostMessageRequest,
    message_id: str,
    seq: int,
    text: str,
    digest: str,
    now: datetime,
) -> SendResult:
    """The message row, its ``message`` log entry (and attachment event) in the outbox."""
    await conn.execute(INSERT_MESSAGE, {
        "id": message_id, "conversation_id": req.conversation_id, "seq": seq, "sender_id": req.user_id,
        "client_id": req.client_id, "envelope": text, "digest": digest, "file_ids": json.dumps(req.file_ids),
        "created_at": now, "deleted_at": None, "deleted_by": None,
    })  # fmt: skip
    await conn.execute(INSERT_OUTBOX, _outbox_rows(req, message_id, seq, digest, now))
    await conn.execute(SENDER_READ, {"cid": req.conversation_id, "uid": req.user_id, "upto": seq})
    return SendResult(
        message_id=message_id, conversation_id=req.conversation_id, seq=seq, digest=digest,
        created_at=format_timestamp(now),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NewMessage:
    req: PostMessageRequest
    message_id: str
    seq: int
    text: str
    digest: str


def insert_messages(conn: Connection, rows: Sequence[NewMessage], now: datetime) -> list[SendResult]:
    """A batch of message rows with their outbox rows, in three statements (``executemany``)."""
    if not rows:
        return []
    conn.execute(INSERT_MESSAGE, [{
        "id": r.message_id, "conversation_id": r.req.conversation_id, "seq": r.seq,
        "sender_id": r.req.user_id, "client_id": r.req.client_id, "envelope": r.text, "digest": r.digest,
        "file_ids": json.dumps(r.req.file_ids), "created_at": now, "deleted_at": None, "deleted_by": None,
    } for r in rows])  # fmt: skip
    outbox = [row for r in rows for row in _outbox_rows(r.req, r.message_id, r.seq, r.digest, now)]
    conn.execute(INSERT_OUTBOX, outbox)
    read_upto: dict[tuple[str, str], int] = {}
    for r in rows:
        read_upto[(r.req.conversation_id, r.req.user_id)] = r.seq  # rows ascend per conversation
    conn.execute(SENDER_READ, [{"cid": c, "uid": u, "upto": seq} for (c, u), seq in read_upto.items()])
    created_at = format_timestamp(now)
    return [
        SendResult(
            message_id=r.message_id,
            conversation_id=r.req.conversation_id,
            seq=r.seq,
            digest=r.digest,
            created_at=created_at,
        )  # fmt: skip
        for r in rows
    ]


def _outbox_rows(
    req: PostMessageRequest, message_id: str, seq: int, digest: str, now: datetime
) -> list[dict[str, Any]]:
    """The ``message`` log entry, and the attachment event when the message has files."""
    rows = [log_entry_row(LogEntry.create("message", message_id, digest, now))]
    if req.file_ids:
        posted = MessagePosted(
            message_id=message_id, conversation_id=req.conversation_id, sender_id=req.user_id, seq=seq,
            file_ids=req.file_ids, created_at=format_timestamp(now),
        )  # fmt: skip
        rows.append(outbox_row(ChatSubject.MESSAGE_POSTED, posted, msg_id=f"posted:{message_id}"))
    return rows
