"""TOTP second factor (RFC 6238 via pyotp) with replay protection and one-time recovery codes."""

from __future__ import annotations

import hmac
import secrets
import time

import pyotp
from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_auth.audit import record_event
from chainchat_auth.context import AuthContext
from chainchat_auth.models import RecoveryCode, User
from chainchat_auth.secrets_util import hash_token
from chainchat_auth.sessions import revoke_other_sessions
from chainchat_auth.vault import SecretVault, totp_context
from chainchat_protocol.auth import (
    AuthErrorCode,
    MfaCodeRequest,
    MfaEnableReply,
    MfaSetupReply,
    MfaStatusReply,
)
from chainchat_protocol.errors import Conflict, NotFound, Unauthorized
from chainchat_service.db import utcnow

ISSUER_NAME = "ChainChat"
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (0/o, 1/l/i)


def _normalise_code(code: str) -> str:
    return code.replace(" ", "").replace("-", "").lower()


def new_recovery_code() -> str:
    """``xxxx-xxxx-xxxx``: 12 characters from 31 symbols, ~59 bits."""
    chars = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


async def _use_totp(
    session: AsyncSession, user: User, secret: str, code: str, now: float | None = None
) -> bool:
    """Accept a code of the previous, current or next 30 s step, never one at or before the last
    step used (a conditional update makes that hold across instances too)."""
    code = _normalise_code(code)
    if not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(secret)
    current = int((now or time.time()) // totp.interval)
    for step in (current - 1, current, current + 1):
        if step <= user.totp_last_step or not hmac.compare_digest(totp.at(step * totp.interval), code):
            continue
        claimed = await session.exec(
            update(User)
            .where(col(User.id) == user.id, col(User.totp_last_step) < step)
            .values(totp_last_step=step)
        )
        if claimed.rowcount == 1:
            user.totp_last_step = step
            return True
    return False


async def _use_recovery_code(session: AsyncSession, user: User, code: str) -> bool:
    presented = hash_token(_normalise_code(code))
    rows = (
        await session.exec(
            select(RecoveryCode).where(RecoveryCode.user_id == user.id, col(RecoveryCode.used_at).is_(None))
        )
    ).all()
    for row in rows:
        if hmac.compare_digest(row.code_hash, presented):
            claimed = await session.exec(
                update(RecoveryCode)
                .where(col(RecoveryCode.id) == row.id, col(RecoveryCode.used_at).is_(None))
                .values(used_at=utcnow())
            )
            return claimed.rowcount == 1
    return False


async def check_second_factor(session: AsyncSession, vault: SecretVault, user: User, code: str) -> bool:
    """A current TOTP code, or an unused recovery code (consumed)."""
    if user.totp_secret is None:
        return False
    secret = vault.open(user.totp_secret, context=totp_context(user.id))
    if await _use_totp(session, user, secret, code):
        return True
    if await _use_recovery_code(session, user, code):
        record_event(session, "mfa_recovery_code_used", user_id=user.id)
        return True
    return False


async def _load(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", code=AuthErrorCode.USER_NOT_FOUND)
    return user


async def setup(ctx: AuthContext, user_id: str) -> MfaSetupReply:
    """Start enrolment: a new secret, active only once a code from it is confirmed."""
    async with ctx.db.session() as session:
        user = await _load(session, user_id)
        if user.totp_secret is not None:
            raise Conflict("two-factor authentication is already on", code=AuthErrorCode.MFA_ALREADY_ENABLED)
        secret = pyotp.random_base32()
        user.totp_pending_secret = ctx.vault.seal(
            secret, context=totp_context(user.id, "totp_pending_secret")
        )
        session.add(user)
        await session.commit()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER_NAME)
    return MfaSetupReply(secret=secret, otpauth_uri=uri)


async def _wrong_code(ctx: AuthContext, user_id: str) -> Unauthorized:
    # a stolen access token must not buy unlimited guesses at the second factor
    await ctx.limiter.hit(f"mfa:{user_id}")
    return Unauthorized("the authentication code is wrong", code=AuthErrorCode.INVALID_MFA_CODE)


async def enable(ctx: AuthContext, req: MfaCodeRequest) -> MfaEnableReply:
    """Confirm enrolment with a code; returns the recovery codes, shown this once. The account's
    other sessions end."""
    await ctx.limiter.check(f"mfa:{req.user_id}", ctx.limit("login_fail_account"))
    async with ctx.db.session() as session:
        user = await _load(session, req.user_id)
        if user.totp_secret is not None:
            raise Conflict("two-factor authentication is already on", code=AuthErrorCode.MFA_ALREADY_ENABLED)
        if user.totp_pending_secret is None:
            raise Conflict("call /auth/mfa/setup first", code=AuthErrorCode.MFA_SETUP_REQUIRED)
        secret = ctx.vault.open(
            user.totp_pending_secret, context=totp_context(user.id, "totp_pending_secret")
        )
        if not await _use_totp(session, user, secret, req.code):
            raise await _wrong_code(ctx, user.id)
        user.totp_secret = ctx.vault.seal(secret, context=totp_context(user.id))
        user.totp_pending_secret = None
        session.add(user)
        codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
        await session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
        for code in codes:
            session.add(RecoveryCode(user_id=user.id, code_hash=hash_token(_normalise_code(code))))
        # whoever else is signed in did so without this factor: they sign in again with it
        revoked = await revoke_other_sessions(
            session, ctx, user.id, keep=req.session_id, reason="mfa_enabled"
        )
        record_event(
            session, "mfa_enabled", user_id=user.id, ip=req.client_ip, detail={"sessions_revoked": revoked}
        )
        await session.commit()
    ctx.after_commit()
    return MfaEnableReply(recovery_codes=codes)


async def disable(ctx: AuthContext, req: MfaCodeRequest) -> MfaStatusReply:
    """Turn TOTP off; needs a current code or a recovery code."""
    await ctx.limiter.check(f"mfa:{req.user_id}", ctx.limit("login_fail_account"))
    async with ctx.db.session() as session:
        user = await _load(session, req.user_id)
        if user.totp_secret is None:
            raise Conflict("two-factor authentication is not on", code=AuthErrorCode.MFA_NOT_ENABLED)
        if not await check_second_factor(session, ctx.vault, user, req.code):
            raise await _wrong_code(ctx, user.id)
        user.totp_secret = None  # totp_last_step stays: a re-enrolment cannot replay old codes
        session.add(user)
        await session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
        record_event(session, "mfa_disabled", user_id=user.id, ip=req.client_ip)
        await session.commit()
    ctx.after_commit()
    return MfaStatusReply(mfa_enabled=False)
