"""Tables of the auth database.

Times are aware UTC (SQLModel's ``UTCDateTime`` stores them alike on SQLite and PostgreSQL).
Secrets (password hash, TOTP secret, signing key)
live on table models only: replies are built from ``chainchat_protocol.auth`` models, which do not
have those fields, so nothing secret can leak through a response.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from chainchat_protocol.auth import UserPublic
from chainchat_service.db import as_utc, utcnow


def new_id() -> str:
    return str(uuid.uuid4())


class UserBase(SQLModel):
    email: str = Field(max_length=254, unique=True, index=True)
    display_name: str = Field(max_length=64)


class UserCreate(UserBase):
    password: str


class User(UserBase, table=True):
    __tablename__ = "user_account"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    # lowercase copy for case-insensitive prefix search on both databases
    display_name_lc: str = Field(max_length=64, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    role: str = Field(default="member", max_length=16)
    status: str = Field(default="pending_verification", max_length=32, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    email_verified_at: datetime | None = None
    totp_secret: str | None = Field(default=None, max_length=200)
    totp_pending_secret: str | None = Field(default=None, max_length=200)
    totp_last_step: int = 0
    wallet_address: str | None = Field(default=None, max_length=42, unique=True)

    def public(self) -> UserPublic:
        """The response view of this account (no secrets)."""
        return UserPublic(
            id=self.id,
            email=self.email,
            display_name=self.display_name,
            role=self.role,  # type: ignore[arg-type]
            status=self.status,  # type: ignore[arg-type]
            mfa_enabled=self.totp_secret is not None,
            wallet_address=self.wallet_address,
            created_at=as_utc(self.created_at),
        )


class EmailToken(SQLModel, table=True):
    """Single-use e-mail link token (verification or password reset); only its hash is kept."""

    __tablename__ = "email_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=36)
    purpose: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class AuthSession(SQLModel, table=True):
    """A login: the family of rotating refresh tokens; access tokens carry its id as ``sid``."""

    __tablename__ = "auth_session"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=36)
    method: str = Field(default="password", max_length=16)
    client_ip: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = Field(default=None, index=True)
    revoked_reason: str | None = Field(default=None, max_length=32)


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_token"

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(foreign_key="auth_session.id", index=True, max_length=36)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    used_at: datetime | None = None


class RecoveryCode(SQLModel, table=True):
    __tablename__ = "recovery_code"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=36)
    code_hash: str = Field(max_length=64)
    used_at: datetime | None = None


class SigningKey(SQLModel, table=True):
    """An Ed25519 JWT signing key; the newest un-retired one signs, retired ones still verify."""

    __tablename__ = "signing_key"

    kid: str = Field(primary_key=True, max_length=64)
    private_key: str = Field(max_length=200)
    public_key: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None


class SiweNonce(SQLModel, table=True):
    __tablename__ = "siwe_nonce"

    nonce: str = Field(primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class DeviceKey(SQLModel, table=True):
    __tablename__ = "device_key"
    __table_args__ = (UniqueConstraint("user_id", "key_id", name="uq_device_key_user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="user_account.id", index=True, max_length=36)
    key_id: str = Field(max_length=32, index=True)
    x25519_public: str = Field(max_length=64)
    ed25519_public: str = Field(max_length=64)
    suite_support: str = Field(max_length=255)
    label: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class AuditEventRow(SQLModel, table=True):
    """A security event; ``at`` and ``detail`` are stored exactly as digested for the ledger."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_created", "created_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    type: str = Field(max_length=64, index=True)
    user_id: str | None = Field(default=None, max_length=36, index=True)
    actor_id: str | None = Field(default=None, max_length=36)
    ip: str | None = Field(default=None, max_length=64)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    at: str = Field(max_length=32)
    digest: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class MailMessage(SQLModel, table=True):
    """Durable mail queue: a registration never waits for, or is lost by, the SMTP server."""

    __tablename__ = "mail_outbox"

    id: int | None = Field(default=None, primary_key=True)
    to_addr: str = Field(max_length=254)
    subject: str = Field(max_length=200)
    text_body: str = Field(sa_column=Column(Text, nullable=False))
    html_body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    next_attempt_at: datetime = Field(default_factory=utcnow, index=True)
    attempts: int = 0
    sent_at: datetime | None = Field(default=None, index=True)
    last_error: str | None = Field(default=None, max_length=255)


class RateEvent(SQLModel, table=True):
    """One counted attempt for a moving-window limit, shared by every auth instance."""

    __tablename__ = "rate_event"
    __table_args__ = (Index("ix_rate_event_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200)
    at: float


class SystemFlag(SQLModel, table=True):
    """One-time facts decided race-free by a primary key (e.g. who became the first admin)."""

    __tablename__ = "system_flag"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(default="", max_length=255)
    created_at: datetime = Field(default_factory=utcnow)
