"""Recent authentication and what it guards, at the service level: reauth tokens, password change,
MFA enable ending other sessions, wallet login asking for TOTP, a reset unlinking the wallet."""

from __future__ import annotations

import time
import warnings
from datetime import UTC, datetime
from typing import Any

import jwt
import pyotp
import pytest
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct
from sqlmodel import select

from chainchat_auth import accounts, mfa, reauth, wallet
from chainchat_auth.context import AuthContext
from chainchat_auth.models import AuthSession, User
from chainchat_protocol.auth import (
    REAUTH_AUDIENCE,
    EmailRequest,
    LoginRequest,
    MfaCodeRequest,
    PasswordChangeRequest,
    PasswordResetBody,
    ReauthRequest,
    SiweNonceRequest,
    SiweRequest,
)
from chainchat_protocol.errors import Forbidden, RateLimited, Unauthorized

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from siwe import SiweMessage

PASSWORD = "correct horse battery"


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


async def _session_ids(ctx: AuthContext, user_id: str) -> tuple[set[str], set[str]]:
    """(live, revoked) session ids of a user."""
    async with ctx.db.session() as session:
        rows = (await session.exec(select(AuthSession).where(AuthSession.user_id == user_id))).all()
    return {r.id for r in rows if r.revoked_at is None}, {r.id for r in rows if r.revoked_at is not None}


async def _signed(ctx: AuthContext, eth: Any) -> tuple[str, str]:
    nonce = (await wallet.new_nonce(ctx, SiweNonceRequest())).nonce
    text = SiweMessage(
        domain=ctx.settings.siwe_domain,
        address=eth.address,
        uri=ctx.settings.public_url,
        version="1",
        chain_id=ctx.settings.chain_id,
        nonce=nonce,
        issued_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    ).prepare_message()
    return text, "0x" + eth.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")


async def test_reauth_token_is_bound_to_the_session_and_is_not_an_access_token(
    ctx: AuthContext, h: Any
) -> None:
    user = await h.make_user(ctx, "a@example.com")
    login = await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    sid = _claims(login.access_token)["sid"]
    assert login.reauth_token is not None  # a login is a recent authentication
    assert _claims(login.reauth_token)["sid"] == sid
    reply = await reauth.reauthenticate(
        ctx, ReauthRequest(user_id=user.id, session_id=sid, password=PASSWORD)
    )
    claims = _claims(reply.reauth_token)
    assert (claims["aud"], claims["sub"], claims["sid"]) == (REAUTH_AUDIENCE, user.id, sid)
    assert reply.expires_in == claims["exp"] - claims["iat"] <= 300
    assert "role" not in claims  # an access-token check needs it, and the audience differs
    with pytest.raises(Forbidden) as err:
        await reauth.reauthenticate(ctx, ReauthRequest(user_id=user.id, session_id=sid, password="wrong one"))
    assert err.value.code == "invalid_credentials"
    with pytest.raises(Unauthorized) as err2:
        await reauth.reauthenticate(
            ctx, ReauthRequest(user_id=user.id, session_id="not-a-session", password=PASSWORD)
        )
    assert err2.value.code == "session_revoked"


async def test_wrong_passwords_at_reauth_are_rate_limited(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    login = await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    sid = _claims(login.access_token)["sid"]
    for _ in range(5):
        with pytest.raises(Forbidden):
            await reauth.reauthenticate(
                ctx, ReauthRequest(user_id=user.id, session_id=sid, password="nope nope")
            )
    with pytest.raises(RateLimited):
        await reauth.reauthenticate(ctx, ReauthRequest(user_id=user.id, session_id=sid, password=PASSWORD))


async def test_reauth_asks_for_totp_when_it_is_on(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    totp = pyotp.TOTP((await mfa.setup(ctx, user.id)).secret)
    await mfa.enable(ctx, MfaCodeRequest(user_id=user.id, code=totp.at(time.time() - 30)))
    login = await accounts.login(
        ctx, LoginRequest(email="a@example.com", password=PASSWORD, totp_code=totp.now())
    )
    sid = _claims(login.access_token)["sid"]
    with pytest.raises(Forbidden) as err:
        await reauth.reauthenticate(ctx, ReauthRequest(user_id=user.id, session_id=sid, password=PASSWORD))
    assert err.value.code == "mfa_required"
    with pytest.raises(Forbidden) as err:
        await reauth.reauthenticate(
            ctx, ReauthRequest(user_id=user.id, session_id=sid, password=PASSWORD, totp_code="000000")
        )
    assert err.value.code == "invalid_mfa_code"
    ok = await reauth.reauthenticate(
        ctx,
        ReauthRequest(
            user_id=user.id, session_id=sid, password=PASSWORD, totp_code=totp.at(time.time() + 30)
        ),
    )
    assert ok.reauth_token


async def test_enabling_mfa_and_changing_the_password_end_the_other_sessions(
    ctx: AuthContext, h: Any
) -> None:
    user = await h.make_user(ctx, "a@example.com")
    login = LoginRequest(email="a@example.com", password=PASSWORD)
    mine = _claims((await accounts.login(ctx, login)).access_token)["sid"]
    thief = _claims((await accounts.login(ctx, login)).access_token)["sid"]
    totp = pyotp.TOTP((await mfa.setup(ctx, user.id)).secret)
    await mfa.enable(ctx, MfaCodeRequest(user_id=user.id, session_id=mine, code=totp.now()))
    live, revoked = await _session_ids(ctx, user.id)
    assert (mine in live, thief in revoked) == (True, True)

    other = _claims(
        (
            await accounts.login(
                ctx,
                LoginRequest(email="a@example.com", password=PASSWORD, totp_code=totp.at(time.time() + 30)),
            )
        ).access_token
    )["sid"]
    await reauth.change_password(
        ctx, PasswordChangeRequest(user_id=user.id, session_id=mine, password="a brand new passphrase")
    )
    live, revoked = await _session_ids(ctx, user.id)
    assert live == {mine}
    assert other in revoked
    with pytest.raises(Unauthorized):
        await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD, totp_code="x" * 6))


async def test_wallet_login_asks_for_totp_and_a_reset_unlinks_the_wallet(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    eth = EthAccount.create()
    text, signature = await _signed(ctx, eth)
    await wallet.sign_in(ctx, SiweRequest(message=text, signature=signature, user_id=user.id))
    totp = pyotp.TOTP((await mfa.setup(ctx, user.id)).secret)
    await mfa.enable(ctx, MfaCodeRequest(user_id=user.id, code=totp.now()))

    text, signature = await _signed(ctx, eth)
    with pytest.raises(Unauthorized) as err:
        await wallet.sign_in(ctx, SiweRequest(message=text, signature=signature))
    assert err.value.code == "mfa_required"
    with pytest.raises(Unauthorized) as err:
        await wallet.sign_in(ctx, SiweRequest(message=text, signature=signature, totp_code="000000"))
    assert err.value.code == "invalid_mfa_code"
    # the same signed message, now with the code: the nonce was not spent by the refusals
    code = totp.at(time.time() + 30)
    reply = await wallet.sign_in(ctx, SiweRequest(message=text, signature=signature, totp_code=code))
    assert reply.user.id == user.id
    assert reply.reauth_token is not None

    await accounts.request_password_reset(ctx, EmailRequest(email="a@example.com"))
    token = h.link_token(await h.last_mail(ctx, "a@example.com"))
    await accounts.reset_password(ctx, PasswordResetBody(token=token, password="a brand new passphrase"))
    async with ctx.db.session() as session:
        stored = await session.get(User, user.id)
    assert stored is not None
    assert stored.wallet_address is None
    text, signature = await _signed(ctx, eth)
    with pytest.raises(Unauthorized) as err:
        await wallet.sign_in(
            ctx, SiweRequest(message=text, signature=signature, totp_code=totp.at(time.time() + 60))
        )
    assert err.value.code == "wallet_not_linked"


async def test_reauth_with_the_linked_wallet(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    login = await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    sid = _claims(login.access_token)["sid"]
    eth, stranger = EthAccount.create(), EthAccount.create()
    text, signature = await _signed(ctx, eth)
    await wallet.sign_in(ctx, SiweRequest(message=text, signature=signature, user_id=user.id))
    text, signature = await _signed(ctx, stranger)
    with pytest.raises(Forbidden):
        await reauth.reauthenticate(
            ctx, ReauthRequest(user_id=user.id, session_id=sid, siwe_message=text, signature=signature)
        )
    text, signature = await _signed(ctx, eth)
    ok = await reauth.reauthenticate(
        ctx, ReauthRequest(user_id=user.id, session_id=sid, siwe_message=text, signature=signature)
    )
    assert _claims(ok.reauth_token)["sid"] == sid
