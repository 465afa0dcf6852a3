"""TOTP secrets and JWT signing keys are sealed at rest; the data key can be rotated."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyotp
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import ValidationError
from sqlalchemy import text

from chainchat_auth import accounts, mfa
from chainchat_auth.app import build_context
from chainchat_auth.context import AuthContext
from chainchat_auth.models import SigningKey, User
from chainchat_auth.settings import AuthSettings
from chainchat_auth.vault import SecretVault, VaultError, totp_context
from chainchat_protocol.auth import LoginRequest, MfaCodeRequest
from chainchat_protocol.b64 import b64e
from chainchat_service.db import Database
from devstack.databases import fresh_database

PASSWORD = "correct horse battery"


def test_sealed_values_open_only_with_their_key_and_row() -> None:
    vault = SecretVault("key-a")
    sealed = vault.seal("JBSWY3DPEHPK3PXP", context=totp_context("u1"))
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert vault.open(sealed, context=totp_context("u1")) == "JBSWY3DPEHPK3PXP"
    assert sealed != vault.seal("JBSWY3DPEHPK3PXP", context=totp_context("u1"))  # fresh nonce
    with pytest.raises(VaultError, match="another row"):
        vault.open(sealed, context=totp_context("u2"))  # copied into another user's row
    with pytest.raises(VaultError, match="unknown data key"):
        SecretVault("key-b").open(sealed, context=totp_context("u1"))
    version, kid, body = sealed.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    with pytest.raises(VaultError):
        vault.open(f"{version}.{kid}.{flipped}", context=totp_context("u1"))
    with pytest.raises(VaultError, match="not a sealed value"):
        vault.open("JBSWY3DPEHPK3PXP", context=totp_context("u1"))


def test_production_refuses_to_start_without_a_data_key() -> None:
    with pytest.raises(ValidationError, match="AUTH_DATA_KEY must be set"):
        AuthSettings(_env_file=None, environment="production")  # type: ignore[call-arg]
    assert AuthSettings(  # type: ignore[call-arg]
        _env_file=None,
        environment="production",
        auth_data_key="k" * 43,
        nats_user="auth",
        nats_password="p" * 43,
    )


async def _raw_secrets(ctx: AuthContext) -> str:
    """Everything the two tables hold, as the database itself stores it."""
    async with ctx.db.engine.connect() as conn:
        users = (await conn.execute(text("SELECT * FROM user_account"))).all()
        keys = (await conn.execute(text("SELECT * FROM signing_key"))).all()
    return repr(users) + repr(keys)


async def test_no_totp_secret_or_signing_key_in_the_database(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    setup = await mfa.setup(ctx, user.id)
    assert setup.secret not in await _raw_secrets(ctx)  # pending secret sealed too
    await mfa.enable(ctx, MfaCodeRequest(user_id=user.id, code=pyotp.TOTP(setup.secret).now()))
    _, private = await ctx.signer.current()
    raw_key = b64e(private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
    stored = await _raw_secrets(ctx)
    assert setup.secret not in stored
    assert raw_key not in stored
    assert stored.count("v1.") >= 2


async def _login_with_totp(ctx: AuthContext, totp: pyotp.TOTP, at: float) -> None:
    await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD, totp_code=totp.at(at)))


async def test_rotating_the_data_key_reseals_every_row(tmp_path: Path, h: Any) -> None:
    async with fresh_database("sqlite", tmp_path, "auth") as url:
        old = await h.make_context(url, auth_data_key="first data key")
        user = await h.make_user(old, "a@example.com")
        setup = await mfa.setup(old, user.id)
        totp = pyotp.TOTP(setup.secret)
        now = time.time()
        await mfa.enable(old, MfaCodeRequest(user_id=user.id, code=totp.at(now - 30)))
        token_before = (await old.signer.jwks()).keys[0].kid
        await old.db.close()

        # the new key alone cannot open what the old one sealed: start-up fails loudly
        db = Database(url)
        with pytest.raises(VaultError, match="unknown data key"):
            await build_context(h.make_settings(auth_data_key="second data key"), db)
        await db.close()

        new = await h.make_context(
            url, auth_data_key="second data key", auth_data_key_previous="first data key"
        )
        try:
            await _login_with_totp(new, totp, now)
            assert (await new.signer.jwks()).keys[0].kid == token_before  # same signing key
            async with new.db.session() as session:
                stored_user = await session.get(User, user.id)
                stored_key = await session.get(SigningKey, token_before)
            assert stored_user is not None
            assert stored_key is not None
            vault = SecretVault("second data key")
            assert vault.is_current(stored_user.totp_secret or "")
            assert vault.is_current(stored_key.private_key)
        finally:
            await new.db.close()

        # the old key can now be dropped
        last = await h.make_context(url, auth_data_key="second data key")
        try:
            await _login_with_totp(last, totp, now + 30)
        finally:
            await last.db.close()


async def test_secrets_written_before_sealing_are_sealed_at_start(tmp_path: Path, h: Any) -> None:
    async with fresh_database("sqlite", tmp_path, "auth") as url:
        ctx = await h.make_context(url)
        user = await h.make_user(ctx, "a@example.com")
        secret = pyotp.random_base32()
        async with ctx.db.engine.begin() as conn:  # as a database from before sealing holds it
            await conn.execute(
                text("UPDATE user_account SET totp_secret = :s WHERE id = :id"), {"s": secret, "id": user.id}
            )
        await ctx.db.close()
        ctx = await h.make_context(url)
        try:
            assert secret not in await _raw_secrets(ctx)
            await _login_with_totp(ctx, pyotp.TOTP(secret), time.time())
        finally:
            await ctx.db.close()
