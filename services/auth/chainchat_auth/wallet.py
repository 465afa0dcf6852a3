"""Sign-In with Ethereum (EIP-4361): single-use nonces, message checks, wallet linking and login."""

from __future__ import annotations

import asyncio
import secrets
import string
import warnings
from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_auth.audit import record_event
from chainchat_auth.context import AuthContext, ensure_active
from chainchat_auth.mfa import check_second_factor
from chainchat_auth.models import SiweNonce, User
from chainchat_auth.sessions import open_session, token_reply
from chainchat_protocol.auth import (
    AuthErrorCode,
    SessionRef,
    SiweNonceReply,
    SiweNonceRequest,
    SiweRequest,
    TokenReply,
    UserPublic,
)
from chainchat_protocol.errors import Conflict, NotFound, Unauthorized
from chainchat_service.db import as_utc, utcnow

with warnings.catch_warnings():
    # Import-time noise from dependencies, not our code: web3 imports the deprecated
    # `websockets.legacy`, and abnf warns that siwe's grammar redefines a core rule.
    warnings.simplefilter("ignore")
    from siwe import SiweMessage, VerificationError

_NONCE_ALPHABET = string.ascii_letters + string.digits


async def new_nonce(ctx: AuthContext, req: SiweNonceRequest) -> SiweNonceReply:
    """A fresh nonce (EIP-4361: alphanumeric, ≥ 8 chars), valid once for ten minutes. Each is a
    row written for an unauthenticated caller: limited per IP, and purged once expired."""
    ip = req.client_ip or "unknown"
    await ctx.limiter.consume(f"siwe_nonce:ip:{ip}", ctx.limit("siwe_nonce_ip", per_ip=True))
    nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(24))
    async with ctx.db.session() as session:
        session.add(
            SiweNonce(nonce=nonce, expires_at=utcnow() + timedelta(seconds=ctx.settings.siwe_nonce_ttl_s))
        )
        await session.commit()
    return SiweNonceReply(nonce=nonce)


async def purge_nonces(ctx: AuthContext) -> int:
    """Drop expired nonces, used or not (a used one past its expiry proves nothing more)."""
    async with ctx.db.session() as session:
        result = await session.exec(delete(SiweNonce).where(col(SiweNonce.expires_at) < utcnow()))
        await session.commit()
    return int(result.rowcount or 0)


def _bad(message: str, code: str = AuthErrorCode.INVALID_SIWE) -> Unauthorized:
    return Unauthorized(message, code=code)


def _wallet_in_use() -> Conflict:
    return Conflict("this wallet is linked to another account", code=AuthErrorCode.WALLET_IN_USE)


def verified_message(ctx: AuthContext, text: str, signature: str) -> SiweMessage:
    """Parse and check domain, chain and signature (the nonce is consumed separately)."""
    try:
        message = SiweMessage.from_message(text)
    except ValueError:
        raise _bad("the message is not an EIP-4361 sign-in message") from None
    if message.domain != ctx.settings.siwe_domain:
        raise _bad(
            f"the message must be for {ctx.settings.siwe_domain}", code=AuthErrorCode.SIWE_DOMAIN_MISMATCH
        )
    if message.chain_id != ctx.settings.chain_id:
        raise _bad(
            f"the message must be for chain {ctx.settings.chain_id}", code=AuthErrorCode.SIWE_CHAIN_MISMATCH
        )
    try:
        message.verify(signature, domain=ctx.settings.siwe_domain)
    except VerificationError as exc:
        raise _bad(f"the signed message is not valid ({type(exc).__name__})") from None
    return message


async def consume_nonce(session: AsyncSession, nonce: str) -> None:
    """Spend a nonce once (401 ``invalid_nonce`` if unknown, used or expired)."""
    used = await session.exec(
        update(SiweNonce)
        .where(col(SiweNonce.nonce) == nonce, col(SiweNonce.used_at).is_(None))
        .where(col(SiweNonce.expires_at) > utcnow())
        .values(used_at=utcnow())
    )
    if used.rowcount != 1:
        raise _bad("the nonce is unknown, used or expired", code=AuthErrorCode.INVALID_NONCE)


async def _link(session: AsyncSession, req: SiweRequest, user_id: str, address: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", code=AuthErrorCode.USER_NOT_FOUND)
    ensure_active(user)
    if user.wallet_address not in (None, address):
        raise Conflict("another wallet is linked to this account", code=AuthErrorCode.WALLET_ALREADY_LINKED)
    owner = (await session.exec(select(User.id).where(User.wallet_address == address))).first()
    if owner not in (None, user.id):
        raise _wallet_in_use()
    user.wallet_address = address
    session.add(user)
    record_event(session, "wallet_linked", user_id=user.id, ip=req.client_ip, detail={"address": address})
    return user


async def _wallet_login(
    ctx: AuthContext, session: AsyncSession, req: SiweRequest, message: SiweMessage
) -> User | None:
    """The account linked to the wallet, its TOTP checked when on (before the nonce is spent,
    so a client asked for the code sends the same signed message again with it)."""
    user = (await session.exec(select(User).where(User.wallet_address == str(message.address)))).first()
    if user is None:
        return None  # the caller spends the nonce, then refuses
    ensure_active(user)
    if user.totp_secret is None:
        return user
    nonce = await session.get(SiweNonce, message.nonce)
    if nonce is None or nonce.used_at is not None or as_utc(nonce.expires_at) <= utcnow():
        raise _bad("the nonce is unknown, used or expired", code=AuthErrorCode.INVALID_NONCE)
    account_key = f"login:acct:{user.email}"
    await ctx.limiter.check(account_key, ctx.limit("login_fail_account"))
    if not req.totp_code:
        raise Unauthorized("enter the code from your authenticator app", code=AuthErrorCode.MFA_REQUIRED)
    if not await check_second_factor(session, ctx.vault, user, req.totp_code):
        await ctx.limiter.hit(account_key)
        record_event(
            session, "login_failed", user_id=user.id, ip=req.client_ip, detail={"reason": "bad_mfa_code"}
        )
        await session.commit()
        ctx.after_commit()
        raise Unauthorized("the authentication code is wrong", code=AuthErrorCode.INVALID_MFA_CODE)
    return user


async def sign_in(ctx: AuthContext, req: SiweRequest) -> TokenReply:
    """Link the wallet to ``req.user_id`` if given (the gateway checked a reauth token), else log
    in the account linked to the wallet (with its TOTP code when MFA is on)."""
    # parsing is pure-Python CPU work: off the event loop, so other requests keep flowing
    message = await asyncio.to_thread(verified_message, ctx, req.message, req.signature)
    address = str(message.address)
    async with ctx.db.session() as session:
        if req.user_id is not None:
            await consume_nonce(session, message.nonce)
            user = await _link(session, req, req.user_id, address)
            method = "siwe_link"
        else:
            found = await _wallet_login(ctx, session, req, message)
            await consume_nonce(session, message.nonce)
            if found is None:
                await session.commit()  # the nonce stays spent
                raise _bad("no account is linked to this wallet", code=AuthErrorCode.WALLET_NOT_LINKED)
            user, method = found, "siwe"
        auth_session, refresh_raw = open_session(session, ctx, user, method=method, ip=req.client_ip)
        record_event(session, "login", user_id=user.id, ip=req.client_ip, detail={"method": method})
        try:
            await session.commit()
        except IntegrityError:
            raise _wallet_in_use() from None  # linked meanwhile by a concurrent request
    ctx.after_commit()
    reply = await token_reply(ctx, user, auth_session.id, refresh_raw)
    if method == "siwe":
        reply.reauth_token = await ctx.signer.mint_reauth(user, auth_session.id, ctx.settings.reauth_ttl_s)
    return reply


async def unlink(ctx: AuthContext, req: SessionRef) -> UserPublic:
    """Remove the wallet from the caller's account (the gateway checked a reauth token)."""
    async with ctx.db.session() as session:
        user = await session.get(User, req.user_id)
        if user is None:
            raise NotFound("no such user", code=AuthErrorCode.USER_NOT_FOUND)
        if user.wallet_address is None:
            raise Conflict("no wallet is linked to this account", code=AuthErrorCode.WALLET_NOT_LINKED)
        address, user.wallet_address = user.wallet_address, None
        session.add(user)
        record_event(
            session, "wallet_unlinked", user_id=user.id, ip=req.client_ip, detail={"address": address}
        )
        await session.commit()
    ctx.after_commit()
    return user.public()
