"""Accounts: sign-up, e-mail verification, password login, password reset."""

from __future__ import annotations

import hmac
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_auth.audit import record_event
from chainchat_auth.context import AuthContext, ensure_active
from chainchat_auth.mailer import link_mail, queue_mail
from chainchat_auth.mfa import check_second_factor
from chainchat_auth.models import EmailToken, SystemFlag, User
from chainchat_auth.passwords import check_password_policy
from chainchat_auth.secrets_util import hash_token, new_token
from chainchat_auth.sessions import open_session, revoke_user_sessions, token_reply
from chainchat_protocol.auth import (
    AuthErrorCode,
    EmailRequest,
    LoginRequest,
    PasswordResetBody,
    RegisterReply,
    RegisterRequest,
    TokenReply,
    UserPublic,
    VerifyReply,
)
from chainchat_protocol.errors import BadRequest, Conflict, ErrorCode, NotFound, Unauthorized
from chainchat_service.db import as_utc, utcnow
from chainchat_service.logging import get_logger

log = get_logger(__name__)

FIRST_ADMIN_FLAG = "first_admin"


def _send_link(session: AsyncSession, ctx: AuthContext, user: User, purpose: str) -> None:
    """Store a single-use token (hashed) and queue the mail that carries it."""
    raw = new_token()
    ttl = ctx.settings.verify_token_ttl_s if purpose == "verify" else ctx.settings.reset_token_ttl_s
    session.add(
        EmailToken(
            user_id=user.id,
            purpose=purpose,
            token_hash=hash_token(raw),
            expires_at=utcnow() + timedelta(seconds=ttl),
        )
    )
    path = "verify" if purpose == "verify" else "reset-password"
    link = f"{ctx.settings.public_base}/{path}?token={raw}"
    subject, text, html_body = link_mail(
        ctx.settings, to=user.email, name=user.display_name, purpose=purpose, link=link
    )
    queue_mail(session, user.email, subject, text, html_body)


async def _limit(ctx: AuthContext, action: str, email: str, ip: str | None) -> None:
    if ip:
        await ctx.limiter.consume(f"{action}:ip:{ip}", ctx.limit(f"{action}_ip", per_ip=True))
    await ctx.limiter.consume(f"{action}:email:{email}", ctx.limit(f"{action}_email"))


async def register(ctx: AuthContext, req: RegisterRequest) -> RegisterReply:
    """Create an unverified account and queue its verification mail (SMTP may be down)."""
    await _limit(ctx, "register", req.email, req.client_ip)
    check_password_policy(req.password, email=req.email, display_name=req.display_name)
    password_hash = await ctx.passwords.hash(req.password)
    async with ctx.db.session() as session:
        user = User(
            email=req.email,
            display_name=req.display_name,
            display_name_lc=req.display_name.lower(),
            password_hash=password_hash,
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError:
            raise Conflict(
                "an account with this e-mail address already exists", code=AuthErrorCode.EMAIL_TAKEN
            ) from None
        _send_link(session, ctx, user, "verify")
        record_event(session, "register", user_id=user.id, ip=req.client_ip)
        await session.commit()
    ctx.after_commit()
    log.info("user_registered", user_id=user.id)
    return RegisterReply(user_id=user.id, status="pending_verification")


async def _consume_link(session: AsyncSession, token: str, purpose: str) -> EmailToken:
    presented = hash_token(token)
    stmt = select(EmailToken).where(EmailToken.token_hash == presented, EmailToken.purpose == purpose)
    row = (await session.exec(stmt)).first()
    if row is None or not hmac.compare_digest(row.token_hash, presented):
        raise BadRequest("this link is invalid, used or expired", code=AuthErrorCode.INVALID_TOKEN)
    if row.used_at is not None or as_utc(row.expires_at) <= utcnow():
        raise BadRequest("this link is invalid, used or expired", code=AuthErrorCode.INVALID_TOKEN)
    claimed = await session.exec(
        update(EmailToken)
        .where(col(EmailToken.id) == row.id, col(EmailToken.used_at).is_(None))
        .values(used_at=utcnow())
    )
    if claimed.rowcount != 1:
        raise BadRequest("this link is invalid, used or expired", code=AuthErrorCode.INVALID_TOKEN)
    return row


async def verify_email(ctx: AuthContext, token: str) -> VerifyReply:
    """Use a verification link. The first verified account becomes the admin, race-free."""
    for may_be_first in (True, False):
        try:
            return await _verify_once(ctx, token, may_be_first=may_be_first)
        except IntegrityError:
            continue  # another account claimed the first-admin flag at the same moment
    raise Conflict("please try again", code=ErrorCode.CONFLICT)


async def _verify_once(ctx: AuthContext, token: str, *, may_be_first: bool) -> VerifyReply:
    async with ctx.db.session() as session:
        link = await _consume_link(session, token, "verify")
        user = await session.get(User, link.user_id)
        assert user is not None
        if user.status != "pending_verification":
            await session.commit()
            return VerifyReply(status=user.status)  # type: ignore[arg-type]
        user.email_verified_at = utcnow()
        if may_be_first and await session.get(SystemFlag, FIRST_ADMIN_FLAG) is None:
            session.add(SystemFlag(name=FIRST_ADMIN_FLAG, value=user.id))
            user.role, user.status = "admin", "active"
        else:
            user.status = "pending_approval" if ctx.settings.auth_require_approval else "active"
        session.add(user)
        record_event(
            session, "email_verified", user_id=user.id, detail={"status": user.status, "role": user.role}
        )
        await session.commit()
    ctx.after_commit()
    return VerifyReply(status=user.status)  # type: ignore[arg-type]


async def resend_verification(ctx: AuthContext, req: EmailRequest) -> None:
    """Send a new link if the account waits for verification and the cool-down passed.

    Answers the same whatever the address, so it cannot tell who has an account."""
    await _limit(ctx, "register", req.email, req.client_ip)
    async with ctx.db.session() as session:
        user = (await session.exec(select(User).where(User.email == req.email))).first()
        if user is None or user.status != "pending_verification":
            return
        last = (
            await session.exec(
                select(EmailToken.created_at)
                .where(EmailToken.user_id == user.id, EmailToken.purpose == "verify")
                .order_by(col(EmailToken.created_at).desc())
            )
        ).first()
        if last is not None and as_utc(last) > utcnow() - timedelta(seconds=ctx.settings.resend_cooldown_s):
            return
        _send_link(session, ctx, user, "verify")
        record_event(session, "verification_resent", user_id=user.id, ip=req.client_ip)
        await session.commit()
    ctx.after_commit()


async def login(ctx: AuthContext, req: LoginRequest) -> TokenReply:
    """Password (+ TOTP) login. Unknown e-mail and wrong password cost and answer the same."""
    account_key, ip_key = f"login:acct:{req.email}", f"login:ip:{req.client_ip or '-'}"
    earlier_failures = await ctx.limiter.check(account_key, ctx.limit("login_fail_account"))
    if req.client_ip:
        await ctx.limiter.check(ip_key, ctx.limit("login_fail_ip", per_ip=True))
    async with ctx.db.session() as session:
        user = (await session.exec(select(User).where(User.email == req.email))).first()
        ok = await ctx.passwords.verify(user.password_hash if user else None, req.password)
        if not ok or user is None:
            await _login_failed(ctx, session, user, req, "bad_password")
            raise Unauthorized("e-mail or password is wrong", code=AuthErrorCode.INVALID_CREDENTIALS)
        ensure_active(user)
        if user.totp_secret is not None:
            if not req.totp_code:
                raise Unauthorized(
                    "enter the code from your authenticator app", code=AuthErrorCode.MFA_REQUIRED
                )
            if not await check_second_factor(session, ctx.vault, user, req.totp_code):
                await _login_failed(ctx, session, user, req, "bad_mfa_code")
                raise Unauthorized("the authentication code is wrong", code=AuthErrorCode.INVALID_MFA_CODE)
        if ctx.passwords.needs_rehash(user.password_hash or ""):
            user.password_hash = await ctx.passwords.hash(req.password)
            session.add(user)
        auth_session, refresh_raw = open_session(session, ctx, user, method="password", ip=req.client_ip)
        record_event(session, "login", user_id=user.id, ip=req.client_ip, detail={"method": "password"})
        await session.commit()
    ctx.after_commit()
    if earlier_failures:
        await ctx.limiter.clear(account_key)  # a success forgives the account's failures
    reply = await token_reply(ctx, user, auth_session.id, refresh_raw)
    # every factor was just given: the new session starts recently authenticated
    reply.reauth_token = await ctx.signer.mint_reauth(user, auth_session.id, ctx.settings.reauth_ttl_s)
    return reply


async def _login_failed(
    ctx: AuthContext, session: AsyncSession, user: User | None, req: LoginRequest, reason: str
) -> None:
    await ctx.limiter.hit(f"login:acct:{req.email}", f"login:ip:{req.client_ip or '-'}")
    record_event(
        session,
        "login_failed",
        user_id=user.id if user else None,
        ip=req.client_ip,
        detail={"reason": reason},
    )
    await session.commit()
    ctx.after_commit()


async def request_password_reset(ctx: AuthContext, req: EmailRequest) -> None:
    """Mail a reset link if the account exists; the answer never says whether it does."""
    await _limit(ctx, "reset", req.email, req.client_ip)
    async with ctx.db.session() as session:
        user = (await session.exec(select(User).where(User.email == req.email))).first()
        if user is None or user.status in ("disabled", "rejected"):
            return
        _send_link(session, ctx, user, "reset")
        record_event(session, "password_reset_requested", user_id=user.id, ip=req.client_ip)
        await session.commit()
    ctx.after_commit()


async def reset_password(ctx: AuthContext, req: PasswordResetBody) -> None:
    """Set a new password from a reset link, sign out every session and unlink the wallet.

    A reset is how an owner takes the account back: whoever held it must keep no way in, and a
    linked wallet is one (device keys stay: revoking them would lock the owner out of its own
    history; ``GET /keys/me`` lists them, each was announced by mail, and one revokes them there)."""
    async with ctx.db.session() as session:
        link = await _consume_link(session, req.token, "reset")
        user = await session.get(User, link.user_id)
        assert user is not None
        await set_password(session, ctx, user, req.password)
        revoked = await revoke_user_sessions(session, ctx, user.id, "password_reset")
        wallet, user.wallet_address = user.wallet_address, None
        record_event(
            session,
            "password_reset",
            user_id=user.id,
            detail={"sessions_revoked": revoked, "wallet_unlinked": wallet},
        )
        await session.commit()
    ctx.after_commit()


async def me(ctx: AuthContext, user_id: str) -> UserPublic:
    """The caller's own account."""
    async with ctx.db.session() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", code=AuthErrorCode.USER_NOT_FOUND)
    return user.public()


async def set_password(session: AsyncSession, ctx: AuthContext, user: User, password: str) -> None:
    """Hash and store a new password (policy checked) and spend every unused reset link, so a link
    mailed earlier cannot undo the change."""
    check_password_policy(password, email=user.email, display_name=user.display_name)
    user.password_hash = await ctx.passwords.hash(password)
    session.add(user)
    await session.exec(
        update(EmailToken)
        .where(col(EmailToken.user_id) == user.id, col(EmailToken.purpose) == "reset")
        .where(col(EmailToken.used_at).is_(None))
        .values(used_at=utcnow())
    )
