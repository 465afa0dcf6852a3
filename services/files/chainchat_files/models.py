"""What the files service stores: file records, message references, pending unpins.

The bytes themselves live on IPFS (ciphertext only); a record is written only after the node
confirmed the upload, in the same transaction as the ``file`` log entry for the ledger.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from chainchat_protocol.files import FilePublic
from chainchat_service.db import utcnow


def new_file_id() -> str:
    return uuid.uuid4().hex


class FileBase(SQLModel):
    conversation_id: str = Field(max_length=128, index=True)
    uploader_id: str = Field(max_length=128)
    cid: str = Field(max_length=200, index=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    sha256: str = Field(min_length=64, max_length=64)


class FileCreate(FileBase):
    """A confirmed upload, before it has an id."""


class FileRecord(FileBase, table=True):
    """One uploaded (encrypted) file. ``deleted_at`` is set when no message references it any more."""

    __tablename__ = "file"

    id: str = Field(default_factory=new_file_id, primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    deleted_at: datetime | None = None

    def to_public(self) -> FilePublic:
        return FilePublic(
            file_id=self.id,
            conversation_id=self.conversation_id,
            uploader_id=self.uploader_id,
            cid=self.cid,
            size=self.size,
            sha256=self.sha256,
            created_at=self.created_at,
        )


class FileReference(SQLModel, table=True):
    """A message that declared a file. Released (not removed) when the message is deleted, so a
    redelivered deletion event finds the pair already released and changes nothing."""

    __tablename__ = "file_reference"

    file_id: str = Field(primary_key=True, max_length=64, foreign_key="file.id")
    message_id: str = Field(primary_key=True, max_length=128)
    declared_at: datetime = Field(default_factory=utcnow)
    released_at: datetime | None = Field(default=None, index=True)


class UnpinTask(SQLModel, table=True):
    """A CID to unpin from IPFS, kept until the node confirmed it (the node may be down)."""

    __tablename__ = "unpin_task"

    id: int | None = Field(default=None, primary_key=True)
    cid: str = Field(max_length=200, index=True)
    reason: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=300)
    done_at: datetime | None = Field(default=None, index=True)
