"""Recent authentication (SPEC §11): the caller gives its credentials again and gets a short-lived
reauth token bound to its session; the gateway asks for one before account-changing actions.

Also the actions that only this module's callers reach: changing the password. Failures answer
403, not 401: the access token is fine, and a 401 would make a client drop its session.
"""

from __future__ import annotations

import asyncio

from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_auth.accounts import set_password
from chainchat_auth.audit import record_event
from chainchat_auth.context import AuthContext, ensure_active
from chainchat_auth.mfa import check_second_factor
from chainchat_auth.models import AuthSession, User
from chainchat_auth.sessions import revoke_other_sessions
from chainchat_auth.wallet import consume_nonce, verified_message
from chainchat_protocol.auth import AuthErrorCode, PasswordChangeRequest, ReauthReply, ReauthRequest
from chainchat_protocol.errors import Forbidden, Unauthorized


async def _caller(session: AsyncSession, user_id: str, session_id: str) -> User:
    """The account of a live session (the access token may outlive a revocation by a moment)."""
    user = await session.get(User, user_id)
    auth_session = await session.get(AuthSession, session_id)
    if user is None or auth_session is None or auth_session.user_id != user.id or auth_session.revoked_at:
        raise Unauthorized("this session has ended; sign in again", code=AuthErrorCode.SESSION_REVOKED)
    ensure_active(user)
    return user


async def _first_factor(ctx: AuthContext, session: AsyncSession, user: User, req: ReauthRequest) -> bool:
    if req.password is not None:
        return await ctx.passwords.verify(user.password_hash, req.password)
    assert req.siwe_message is not None  # the body's validator: a wallet reauth has both
    assert req.signature is not None
    message = await asyncio.to_thread(verified_message, ctx, req.siwe_message, req.signature)
    await consume_nonce(session, message.nonce)
    return user.wallet_address is not None and str(message.address) == user.wallet_address


async def reauthenticate(ctx: AuthContext, req: ReauthRequest) -> ReauthReply:
    """Check the password (or the linked wallet's signature) and TOTP when it is on."""
    limit_key = f"reauth:{req.user_id}"
    await ctx.limiter.check(limit_key, ctx.limit("reauth_fail"))
    async with ctx.db.session() as session:
        user = await _caller(session, req.user_id, req.session_id)
        if user.totp_secret is not None and not req.totp_code:
            # before the first factor: a wallet nonce is not spent on a missing code
            raise Forbidden("enter the code from your authenticator app", code=AuthErrorCode.MFA_REQUIRED)
        if not await _first_factor(ctx, session, user, req):
            await _failed(ctx, session, user, req, "bad_password")
            raise Forbidden("the password or signature is wrong", code=AuthErrorCode.INVALID_CREDENTIALS)
        if user.totp_secret is not None and not await check_second_factor(
            session, ctx.vault, user, req.totp_code or ""
        ):
            await _failed(ctx, session, user, req, "bad_mfa_code")
            raise Forbidden("the authentication code is wrong", code=AuthErrorCode.INVALID_MFA_CODE)
        method = "password" if req.password is not None else "siwe"
        record_event(session, "reauth", user_id=user.id, ip=req.client_ip, detail={"method": method})
        await session.commit()
    ctx.after_commit()
    token = await ctx.signer.mint_reauth(user, req.session_id, ctx.settings.reauth_ttl_s)
    return ReauthReply(reauth_token=token, expires_in=ctx.settings.reauth_ttl_s)


async def _failed(
    ctx: AuthContext, session: AsyncSession, user: User, req: ReauthRequest, reason: str
) -> None:
    # commit first: a wallet attempt has spent its nonce in this transaction (SQLite has one writer)
    record_event(session, "reauth_failed", user_id=user.id, ip=req.client_ip, detail={"reason": reason})
    await session.commit()
    ctx.after_commit()
    await ctx.limiter.hit(f"reauth:{user.id}")


async def change_password(ctx: AuthContext, req: PasswordChangeRequest) -> None:
    """Set a new password (the gateway checked a reauth token) and end the other sessions."""
    async with ctx.db.session() as session:
        user = await _caller(session, req.user_id, req.session_id)
        await set_password(session, ctx, user, req.password)
        revoked = await revoke_other_sessions(
            session, ctx, user.id, keep=req.session_id, reason="password_change"
        )
        record_event(
            session,
            "password_changed",
            user_id=user.id,
            ip=req.client_ip,
            detail={"sessions_revoked": revoked},
        )
        await session.commit()
    ctx.after_commit()
