"""Fixtures for the auth service's unit tests: a fresh SQLite database per test, cheap argon2."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from chainchat_auth.accounts import register, verify_email
from chainchat_auth.app import build_context
from chainchat_auth.context import AuthContext
from chainchat_auth.models import EmailToken, MailMessage, User
from chainchat_auth.secrets_util import hash_token
from chainchat_auth.settings import AuthSettings
from chainchat_protocol.auth import RegisterRequest
from chainchat_service.db import Database
from devstack.databases import fresh_database


def make_settings(**overrides: object) -> AuthSettings:
    """Test settings: argon2 kept cheap, limits as configured unless overridden."""
    values: dict[str, object] = {
        "environment": "development",
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        "public_url": "http://chat.example:8000",
    }
    values.update(overrides)
    return AuthSettings(_env_file=None, **values)  # type: ignore[call-arg]


async def make_context(url: str, **overrides: object) -> AuthContext:
    return await build_context(make_settings(**overrides), Database(url))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def ctx(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuthContext]:
    """The service's context on a fresh database; every test runs on SQLite and PostgreSQL."""
    async with fresh_database(request.param, tmp_path, "auth") as url:
        context = await make_context(url)
        try:
            yield context
        finally:
            await context.db.close()


def _link_token(mail: MailMessage) -> str:
    """The token in the link of a queued mail."""
    return mail.text_body.split("token=", 1)[1].split()[0]


async def _last_mail(ctx: AuthContext, to: str) -> MailMessage:
    async with ctx.db.session() as session:
        stmt = select(MailMessage).where(MailMessage.to_addr == to).order_by(col(MailMessage.id).desc())
        mail = (await session.exec(stmt)).first()
    assert mail is not None
    return mail


async def _make_user(
    ctx: AuthContext, email: str, *, password: str = "correct horse battery", name: str | None = None
) -> User:
    """Register and verify a user; returns the stored account."""
    reply = await register(
        ctx, RegisterRequest(email=email, password=password, display_name=name or email[:10])
    )
    mail = await _last_mail(ctx, email.lower())
    await verify_email(ctx, _link_token(mail))
    async with ctx.db.session() as session:
        user = await session.get(User, reply.user_id)
        token = (await session.exec(select(EmailToken).where(EmailToken.user_id == reply.user_id))).first()
    assert user is not None
    assert token is not None
    assert token.token_hash == hash_token(_link_token(mail))
    return user


class Helpers:
    """Shared test helpers (a fixture, since test modules cannot import conftest by name)."""

    link_token = staticmethod(_link_token)
    last_mail = staticmethod(_last_mail)
    make_user = staticmethod(_make_user)
    make_context = staticmethod(make_context)
    make_settings = staticmethod(make_settings)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
