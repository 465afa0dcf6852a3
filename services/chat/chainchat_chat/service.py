"""Conversations: creation (one direct conversation per pair), membership, read positions, access.

Domain logic only: the database, a ``Directory`` (auth) and a ``Notifier`` (deliveries) are
passed in. Non-members get ``conversation_not_found`` for everything, exactly like a conversation
that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import base64
import math
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_chat.directory import Directory
from chainchat_chat.models import Conversation, Member, Message
from chainchat_chat.notify import Notifier
from chainchat_protocol.chat import (
    MAX_GROUP_MEMBERS,
    AddMembersRequest,
    ChatErrorCode,
    ConversationCreated,
    ConversationFrame,
    ConversationList,
    ConversationListRequest,
    ConversationPublic,
    ConversationRequest,
    ConversationSummary,
    CreateConversationRequest,
    MarkReadRequest,
    MemberRole,
    Membership,
    MessageAccess,
    MessageAccessRequest,
    ReadPosition,
    ReceiptFrame,
    RemoveMemberRequest,
    TypingFrame,
)
from chainchat_protocol.errors import Conflict, ErrorCode, Forbidden, NotFound, RateLimited, ValidationFailed
from chainchat_protocol.log_entry import format_timestamp
from chainchat_protocol.rpc import fitting
from chainchat_service.db import Database, as_utc, utcnow


def new_id() -> str:
    return uuid.uuid4().hex


def conversation_not_found() -> NotFound:
    return NotFound("conversation not found", code=ChatErrorCode.CONVERSATION_NOT_FOUND)


async def load_membership(
    session: AsyncSession, conversation_id: str, user_id: str
) -> tuple[Conversation, Member]:
    """The conversation and the caller's membership, or ``conversation_not_found``."""
    row = (
        await session.exec(
            select(Conversation, Member)
            .join(Member, col(Member.conversation_id) == col(Conversation.id))
            .where(Conversation.id == conversation_id, Member.user_id == user_id)
        )
    ).first()
    if row is None:
        raise conversation_not_found()
    return row[0], row[1]


async def load_members(session: AsyncSession, conversation_ids: Collection[str]) -> dict[str, list[Member]]:
    rows = (
        await session.exec(
            select(Member)
            .where(col(Member.conversation_id).in_(list(conversation_ids)))
            .order_by(col(Member.joined_at), col(Member.user_id))
        )
    ).all()
    members: dict[str, list[Member]] = {cid: [] for cid in conversation_ids}
    for member in rows:
        members[member.conversation_id].append(member)
    return members


async def lock_conversation(session: AsyncSession, conversation_id: str) -> int:
    """Start the writing transaction by touching the conversation row; return its ``last_seq``.

    On PostgreSQL the UPDATE locks the row until commit, so sends and membership changes of one
    conversation serialise (and nothing else waits); SQLite takes its single write lock here.
    """
    result = await session.exec(
        update(Conversation)
        .where(col(Conversation.id) == conversation_id)
        .values(last_seq=col(Conversation.last_seq))
        .returning(col(Conversation.last_seq))
    )
    last_seq = result.scalar_one_or_none()
    if last_seq is None:
        raise conversation_not_found()
    return int(last_seq)


def public_view(conv: Conversation, members: Sequence[Member]) -> ConversationPublic:
    return ConversationPublic(
        conversation_id=conv.id,
        kind="direct" if conv.kind == "direct" else "group",
        title=conv.title,
        members=[m.user_id for m in members],
        admins=[m.user_id for m in members if m.role == "admin"],
        created_by=conv.created_by,
        created_at=format_timestamp(as_utc(conv.created_at)),
    )


def summary_view(conv: Conversation, members: Sequence[Member], me: Member) -> ConversationSummary:
    read_seq = max(me.read_seq, me.joined_seq)
    return ConversationSummary(
        **public_view(conv, members).model_dump(),
        last_seq=conv.last_seq,
        read_seq=read_seq,
        unread_count=max(0, conv.last_seq - read_seq),
        last_message_at=format_timestamp(as_utc(conv.last_message_at)) if conv.last_message_at else None,
    )


def _activity(conv: Conversation) -> tuple[datetime, str]:
    """The order of the conversation list: last message (or creation) time, then id."""
    return as_utc(conv.last_message_at or conv.created_at), conv.id


def encode_cursor(position: tuple[datetime, str]) -> str:
    """An opaque list cursor: base64url of ``<RFC 3339 time> <conversation id>``."""
    text = f"{position[0].isoformat()} {position[1]}"  # microseconds kept: no two positions merge
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; 422 ``invalid_cursor`` for anything else."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, conversation_id = text.split(" ")
        return as_utc(datetime.fromisoformat(stamp)), conversation_id
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("not a conversation list cursor", code=ChatErrorCode.INVALID_CURSOR) from None


class ConversationService:
    """``create_limit``: at most ``count`` new conversations per user in ``window_s`` seconds,
    counted from the conversations themselves (so every chat instance counts the same)."""

    def __init__(
        self, db: Database, directory: Directory, notifier: Notifier, create_limit: tuple[int, int] = (30, 60)
    ) -> None:
        self.db = db
        self.directory = directory
        self.notifier = notifier
        self.create_limit = create_limit

    async def create(self, req: CreateConversationRequest) -> ConversationCreated:
        others = sorted(set(req.member_ids) - {req.user_id})
        if not others:
            raise ValidationFailed("a conversation needs another member", code=ChatErrorCode.MEMBERS_REQUIRED)
        kind = req.kind or ("direct" if len(others) == 1 and req.title is None else "group")
        if kind == "direct" and (len(others) != 1 or req.title is not None):
            raise ValidationFailed(
                "a direct conversation has exactly one other member and no title",
                code=ChatErrorCode.DIRECT_CONVERSATION,
            )
        if len(others) + 1 > MAX_GROUP_MEMBERS:
            raise ValidationFailed(
                f"a group has at most {MAX_GROUP_MEMBERS} members", code=ChatErrorCode.TOO_MANY_MEMBERS
            )
        await self._require_active(others)
        direct_key = ":".join(sorted([req.user_id, others[0]])) if kind == "direct" else None
        if direct_key is not None and (existing := await self._direct(direct_key)) is not None:
            return existing
        await self._check_create_rate(req.user_id)
        try:
            view = await self._insert(req.user_id, kind, req.title, others, direct_key)
        except IntegrityError:
            # two first messages between the same pair raced: the other insert won
            existing = await self._direct(direct_key) if direct_key else None
            if existing is None:
                raise
            return existing
        await self.notifier.deliver(view.members, ConversationFrame(
            event="created", conversation_id=view.conversation_id, conversation=view
        ))  # fmt: skip
        return ConversationCreated(**view.model_dump(), created=True)

    async def _check_create_rate(self, creator: str) -> None:
        count, window_s = self.create_limit
        now = utcnow()
        async with self.db.session() as session:
            recent, oldest = (
                await session.exec(
                    select(func.count(), func.min(Conversation.created_at)).where(
                        Conversation.created_by == creator,
                        col(Conversation.created_at) > now - timedelta(seconds=window_s),
                    )
                )
            ).one()
        if recent >= count:
            free_at = as_utc(oldest or now) + timedelta(seconds=window_s)
            raise RateLimited(
                f"at most {count} new conversations per {window_s} s; try again later",
                retry_after=max(1, math.ceil((free_at - now).total_seconds())),
            )

    async def _require_active(self, user_ids: Collection[str]) -> None:
        active = await self.directory.active_users(user_ids)
        unknown = sorted(set(user_ids) - active)
        if unknown:
            raise ValidationFailed(
                f"unknown or inactive users: {', '.join(unknown)}", code=ChatErrorCode.UNKNOWN_USERS
            )

    async def _direct(self, direct_key: str) -> ConversationCreated | None:
        async with self.db.session() as session:
            conv = (
                await session.exec(select(Conversation).where(Conversation.direct_key == direct_key))
            ).first()
            if conv is None:
                return None
            members = (await load_members(session, [conv.id]))[conv.id]
        return ConversationCreated(**public_view(conv, members).model_dump(), created=False)

    async def _insert(
        self, creator: str, kind: str, title: str | None, others: list[str], direct_key: str | None
    ) -> ConversationPublic:
        conv = Conversation(id=new_id(), kind=kind, title=title, direct_key=direct_key, created_by=creator)
        creator_role = "admin" if kind == "group" else "member"
        members = [Member(conversation_id=conv.id, user_id=creator, role=creator_role)]
        members += [
            Member(conversation_id=conv.id, user_id=u, joined_at=members[0].joined_at) for u in others
        ]
        async with self.db.session() as session:
            session.add(conv)
            await session.flush()  # the conversation row first: members reference it
            session.add_all(members)
            await session.commit()
        return public_view(conv, members)

    async def list_for(self, req: ConversationListRequest) -> ConversationList:
        """A page of the caller's conversations, most recently active first (ties by id), cut
        short where the next one would not fit in one bus reply."""
        after = decode_cursor(req.cursor) if req.cursor else None
        async with self.db.session() as session:
            rows = (
                await session.exec(
                    select(Conversation, Member)
                    .join(Member, col(Member.conversation_id) == col(Conversation.id))
                    .where(Member.user_id == req.user_id)
                )
            ).all()
            ordered = sorted(rows, key=lambda row: _activity(row[0]), reverse=True)
            if after is not None:
                ordered = [row for row in ordered if _activity(row[0]) < after]
            window = ordered[: req.limit]
            members = await load_members(session, [conv.id for conv, _ in window])
        summaries = [summary_view(conv, members[conv.id], me) for conv, me in window]
        page = summaries[: fitting(summaries)]
        has_more = len(ordered) > len(page)
        last = window[len(page) - 1][0] if page else None
        return ConversationList(
            conversations=page,
            has_more=has_more,
            next_cursor=encode_cursor(_activity(last)) if has_more and last is not None else None,
        )

    async def get(self, req: ConversationRequest) -> ConversationSummary:
        async with self.db.session() as session:
            conv, me = await load_membership(session, req.conversation_id, req.user_id)
            members = (await load_members(session, [conv.id]))[conv.id]
        return summary_view(conv, members, me)

    async def add_members(self, req: AddMembersRequest) -> ConversationPublic:
        async with self.db.session() as session:
            conv, me = await load_membership(session, req.conversation_id, req.user_id)
            _require_group_admin(conv, me)
            current = {m.user_id for m in (await load_members(session, [conv.id]))[conv.id]}
        new = sorted(set(req.user_ids) - current)
        if len(current) + len(new) > MAX_GROUP_MEMBERS:
            raise ValidationFailed(
                f"a group has at most {MAX_GROUP_MEMBERS} members", code=ChatErrorCode.TOO_MANY_MEMBERS
            )
        if new:
            await self._require_active(new)
            await self._join(conv.id, new)
        return await self._announce_members(conv.id)

    async def _join(self, conversation_id: str, user_ids: list[str]) -> None:
        async with self.db.session() as session:
            # read inside the writing transaction: the new members' history starts after it
            last_seq = await lock_conversation(session, conversation_id)
            for user_id in user_ids:
                session.add(Member(
                    conversation_id=conversation_id, user_id=user_id, read_seq=last_seq, joined_seq=last_seq
                ))  # fmt: skip
            try:
                await session.commit()
            except IntegrityError:
                raise Conflict("membership changed concurrently; retry", code=ErrorCode.CONFLICT) from None

    async def _announce_members(self, conversation_id: str) -> ConversationPublic:
        async with self.db.session() as session:
            conv = (await session.exec(select(Conversation).where(Conversation.id == conversation_id))).one()
            members = (await load_members(session, [conv.id]))[conv.id]
        view = public_view(conv, members)
        await self.notifier.deliver(view.members, ConversationFrame(
            event="members_changed", conversation_id=conv.id, conversation=view
        ))  # fmt: skip
        return view

    async def remove_member(self, req: RemoveMemberRequest) -> None:
        async with self.db.session() as session:
            conv, me = await load_membership(session, req.conversation_id, req.user_id)
            if req.member_id != req.user_id:
                _require_group_admin(conv, me)
            elif conv.kind == "direct":
                raise Conflict("a direct conversation cannot be left", code=ChatErrorCode.DIRECT_CONVERSATION)
            await session.commit()  # end the checks; the writing transaction starts with the lock
            await lock_conversation(session, conv.id)  # a send in flight finishes first (or after)
            result = await session.exec(
                delete(Member).where(
                    col(Member.conversation_id) == conv.id, col(Member.user_id) == req.member_id
                )
            )
            if result.rowcount == 0:
                raise NotFound("not a member of this conversation", code=ChatErrorCode.MEMBER_NOT_FOUND)
            await _keep_an_admin(session, conv.id)
            await session.commit()
        # the removed member hears it once, then nothing more: deliveries follow current members
        await self.notifier.deliver(
            [req.member_id], ConversationFrame(event="removed", conversation_id=conv.id)
        )
        await self._announce_members(conv.id)

    async def mark_read(self, req: MarkReadRequest) -> ReadPosition:
        async with self.db.session() as session:
            conv, me = await load_membership(session, req.conversation_id, req.user_id)
            if req.seq > conv.last_seq:
                raise ValidationFailed(
                    f"seq {req.seq} is beyond the last message ({conv.last_seq})",
                    code=ChatErrorCode.SEQ_OUT_OF_RANGE,
                )
            # monotonic in SQL, so two devices marking concurrently never move it backwards
            result = await session.exec(
                update(Member)
                .where(col(Member.conversation_id) == conv.id, col(Member.user_id) == req.user_id)
                .where(col(Member.read_seq) < req.seq)
                .values(read_seq=req.seq)
            )
            await session.commit()
            advanced = result.rowcount > 0
            members = (await load_members(session, [conv.id]))[conv.id]
        read_seq = max(req.seq, me.read_seq, me.joined_seq)
        if advanced:
            others = [m.user_id for m in members if m.user_id != req.user_id]
            receipt = ReceiptFrame(conversation_id=conv.id, user_id=req.user_id, seq=read_seq)
            # the reader's own devices learn it too: their unread badge clears everywhere
            await self.notifier.deliver([*others, req.user_id], receipt)
        return ReadPosition(
            conversation_id=conv.id, seq=read_seq, unread_count=max(0, conv.last_seq - read_seq)
        )

    async def typing(self, req: ConversationRequest) -> None:
        async with self.db.session() as session:
            await load_membership(session, req.conversation_id, req.user_id)
            members = (await load_members(session, [req.conversation_id]))[req.conversation_id]
        others = [m.user_id for m in members if m.user_id != req.user_id]
        await self.notifier.deliver(
            others, TypingFrame(conversation_id=req.conversation_id, user_id=req.user_id)
        )

    async def membership(self, req: ConversationRequest) -> Membership:
        async with self.db.session() as session:
            _, me = await load_membership(session, req.conversation_id, req.user_id)
        role: MemberRole = "admin" if me.role == "admin" else "member"
        return Membership(conversation_id=me.conversation_id, user_id=me.user_id, role=role)

    async def message_access(self, req: MessageAccessRequest) -> MessageAccess:
        async with self.db.session() as session:
            msg = (await session.exec(select(Message).where(Message.id == req.message_id))).first()
            if msg is not None:
                member = await session.get(Member, (msg.conversation_id, req.user_id))
                if member is not None and msg.seq > member.joined_seq:
                    return MessageAccess(conversation_id=msg.conversation_id, message_id=msg.id)
        raise NotFound("message not found", code=ChatErrorCode.MESSAGE_NOT_FOUND)


def _require_group_admin(conv: Conversation, me: Member) -> None:
    if conv.kind == "direct":
        raise Conflict("a direct conversation has fixed members", code=ChatErrorCode.DIRECT_CONVERSATION)
    if me.role != "admin":
        raise Forbidden("only group admins may change members", code=ChatErrorCode.NOT_GROUP_ADMIN)


async def _keep_an_admin(session: AsyncSession, conversation_id: str) -> None:
    """When the last admin leaves, the longest-standing member becomes admin."""
    members = (await load_members(session, [conversation_id]))[conversation_id]
    if members and not any(m.role == "admin" for m in members):
        members[0].role = "admin"
        session.add(members[0])
