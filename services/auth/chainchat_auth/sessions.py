"""Sessions: rotating refresh tokens (reuse revokes the family), logout, revocation events."""

from __future__ import annotations

import hmac
import time
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_auth.audit import record_event
from chainchat_auth.context import AuthContext, ensure_active
from chainchat_auth.models import AuthSession, RefreshToken, User, new_id
from chainchat_auth.secrets_util import hash_token, new_token
from chainchat_protocol.auth import (
    AuthErrorCode,
    LogoutRequest,
    RefreshRequest,
    RevokedListReply,
    RevokedSession,
    SessionsRevoked,
    TokenReply,
)
from chainchat_protocol.errors import Unauthorized
from chainchat_protocol.subjects import Subject
from chainchat_service.db import as_utc, utcnow
from chainchat_service.outbox import outbox_message


def open_session(
    session: AsyncSession, ctx: AuthContext, user: User, *, method: str, ip: str | None
) -> tuple[AuthSession, str]:
    """Add a new session with its first refresh token; returns the raw token (never stored)."""
    auth_session = AuthSession(
        user_id=user.id,
        method=method,
        client_ip=ip,
        expires_at=utcnow() + timedelta(seconds=ctx.settings.refresh_ttl_s),
    )
    raw = new_token()
    session.add(auth_session)
    session.add(RefreshToken(session_id=auth_session.id, token_hash=hash_token(raw)))
    return auth_session, raw


async def token_reply(ctx: AuthContext, user: User, session_id: str, refresh_token: str) -> TokenReply:
    """The login/refresh reply with a freshly minted access token."""
    access = await ctx.signer.mint(user, session_id)
    return TokenReply(
        access_token=access,
        refresh_token=refresh_token,
        expires_in=ctx.settings.jwt_ttl_s,
        user=user.public(),
    )


def revoke_sessions(
    session: AsyncSession, ctx: AuthContext, sessions: list[AuthSession], *, user_id: str, reason: str
) -> None:
    """Mark sessions revoked and queue the event gateways use to drop their access tokens."""
    if not sessions:
        return
    now = utcnow()
    expires_at = int(time.time()) + ctx.settings.jwt_ttl_s + 1
    for auth_session in sessions:
        auth_session.revoked_at = now
        auth_session.revoked_reason = reason
        session.add(auth_session)
    event = SessionsRevoked(
        user_id=user_id,
        sessions=[RevokedSession(session_id=s.id, expires_at=expires_at) for s in sessions],
        reason=reason,
    )
    session.add(outbox_message(Subject.AUTH_REVOKED, event, msg_id=f"revoked:{new_id()}", jetstream=False))


async def revoke_user_sessions(session: AsyncSession, ctx: AuthContext, user_id: str, reason: str) -> int:
    """Revoke every live session of a user (disable, password reset, demotion)."""
    stmt = select(AuthSession).where(AuthSession.user_id == user_id, col(AuthSession.revoked_at).is_(None))
    live = list((await session.exec(stmt)).all())
    revoke_sessions(session, ctx, live, user_id=user_id, reason=reason)
    return len(live)


async def revoke_other_sessions(
    session: AsyncSession, ctx: AuthContext, user_id: str, *, keep: str | None, reason: str
) -> int:
    """Revoke every live session of a user but ``keep`` (MFA enabled, password changed)."""
    stmt = select(AuthSession).where(AuthSession.user_id == user_id, col(AuthSession.revoked_at).is_(None))
    live = [s for s in (await session.exec(stmt)).all() if s.id != keep]
    revoke_sessions(session, ctx, live, user_id=user_id, reason=reason)
    return len(live)


async def refresh(ctx: AuthContext, req: RefreshRequest) -> TokenReply:
    """Exchange a refresh token for a new pair; a second use of any token revokes the session."""
    presented = hash_token(req.refresh_token)
    async with ctx.db.session() as session:
        row = (await session.exec(select(RefreshToken).where(RefreshToken.token_hash == presented))).first()
        if row is None or not hmac.compare_digest(row.token_hash, presented):
            raise Unauthorized("the refresh token is not valid", code=AuthErrorCode.INVALID_REFRESH_TOKEN)
        auth_session = await session.get(AuthSession, row.session_id)
        if (
            auth_session is None
            or auth_session.revoked_at is not None
            or as_utc(auth_session.expires_at) <= utcnow()
        ):
            raise Unauthorized("the session has ended; sign in again", code=AuthErrorCode.SESSION_REVOKED)
        claimed = await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.id) == row.id, col(RefreshToken.used_at).is_(None))
            .values(used_at=utcnow())
        )
        if claimed.rowcount != 1:
            # An old token came back: whoever holds it is not the only holder. Kill the family.
            revoke_sessions(
                session, ctx, [auth_session], user_id=auth_session.user_id, reason="refresh_reuse"
            )
            record_event(session, "refresh_token_reused", user_id=auth_session.user_id, ip=req.client_ip)
            await session.commit()
            ctx.after_commit()
            raise Unauthorized(
                "refresh token reused; the session was revoked", code=AuthErrorCode.REFRESH_TOKEN_REUSED
            )
        user = await session.get(User, auth_session.user_id)
        assert user is not None
        ensure_active(user)
        raw = new_token()
        session.add(RefreshToken(session_id=auth_session.id, token_hash=hash_token(raw)))
        await session.commit()
    return await token_reply(ctx, user, auth_session.id, raw)


async def logout(ctx: AuthContext, req: LogoutRequest) -> None:
    """End a session, named by the caller's access token or else by a refresh token."""
    async with ctx.db.session() as session:
        auth_session: AuthSession | None = None
        if req.session_id is not None:
            auth_session = await session.get(AuthSession, req.session_id)
            if auth_session is not None and auth_session.user_id != req.user_id:
                auth_session = None
        elif req.refresh_token is not None:
            presented = hash_token(req.refresh_token)
            stmt = select(RefreshToken).where(RefreshToken.token_hash == presented)
            row = (await session.exec(stmt)).first()
            if row is not None and hmac.compare_digest(row.token_hash, presented):
                auth_session = await session.get(AuthSession, row.session_id)
        if auth_session is None or auth_session.revoked_at is not None:
            return  # logging out twice is not an error
        revoke_sessions(session, ctx, [auth_session], user_id=auth_session.user_id, reason="logout")
        record_event(session, "logout", user_id=auth_session.user_id, detail={"session_id": auth_session.id})
        await session.commit()
    ctx.after_commit()


async def revoked_list(ctx: AuthContext) -> RevokedListReply:
    """Sessions revoked within one access-token lifetime: what a starting gateway must know."""
    horizon = utcnow() - timedelta(seconds=ctx.settings.jwt_ttl_s + 1)
    async with ctx.db.session() as session:
        stmt = select(AuthSession).where(col(AuthSession.revoked_at) > horizon)
        rows = (await session.exec(stmt)).all()
    return RevokedListReply(
        sessions=[
            RevokedSession(
                session_id=r.id,
                expires_at=int(as_utc(r.revoked_at).timestamp()) + ctx.settings.jwt_ttl_s + 1,  # type: ignore[arg-type]
            )
            for r in rows
        ]
    )
