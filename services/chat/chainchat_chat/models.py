"""Tables of the chat service: conversations, members, messages (ciphertext only), and the outbox.

The per-conversation sequence is gap-free because ``Conversation.last_seq`` is incremented in the
same transaction that inserts the message (the UPDATE locks the row on PostgreSQL, the database
on SQLite), and ``UNIQUE(conversation_id, seq)`` makes any other writer fail loudly, never
silently duplicate.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from chainchat_service.db import utcnow
from chainchat_service.outbox import OutboxMessage

__all__ = ["Conversation", "Member", "Message", "OutboxMessage"]


def _timestamp(nullable: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable)


class Conversation(SQLModel, table=True):
    __tablename__ = "conversation"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)
    title: str | None = Field(default=None, max_length=200)
    # "<user_a>:<user_b>" sorted, for direct conversations only: one conversation per pair
    direct_key: str | None = Field(default=None, max_length=200, unique=True)
    last_seq: int = 0
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    last_message_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))


class Member(SQLModel, table=True):
    __tablename__ = "member"
    __table_args__ = (Index("ix_member_user_id", "user_id"),)

    conversation_id: str = Field(primary_key=True, foreign_key="conversation.id", max_length=64)
    user_id: str = Field(primary_key=True, max_length=128)
    role: str = Field(default="member", max_length=16)
    # monotonic read position; unread = last_seq - read_seq
    read_seq: int = 0
    # messages up to this seq were sealed before the member joined: not theirs to read
    joined_seq: int = 0
    joined_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_message_conversation_seq"),
        UniqueConstraint("conversation_id", "sender_id", "client_id", name="uq_message_client_id"),
    )

    id: str = Field(primary_key=True, max_length=64)
    conversation_id: str = Field(foreign_key="conversation.id", max_length=64)
    seq: int
    sender_id: str = Field(max_length=128)
    client_id: str | None = Field(default=None, max_length=128)
    # canonical JSON of the envelope; NULL once deleted (the row stays as a tombstone)
    envelope: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    digest: str = Field(max_length=64)
    # attachments declared by the sender, JSON list of file ids
    file_ids: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    deleted_at: datetime | None = Field(default=None, sa_column=_timestamp(nullable=True))
    deleted_by: str | None = Field(default=None, max_length=128)
