"""TOTP (replay window, recovery codes) and Sign-In with Ethereum, at the service level."""

from __future__ import annotations

import time
import warnings
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from eth_account import Account as EthAccount
from eth_account.messages import encode_defunct

from chainchat_auth import accounts, mfa, wallet
from chainchat_auth.context import AuthContext
from chainchat_auth.models import User
from chainchat_protocol.auth import LoginRequest, MfaCodeRequest, SiweNonceRequest, SiweRequest
from chainchat_protocol.errors import Conflict, RateLimited, Unauthorized

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from siwe import SiweMessage

PASSWORD = "correct horse battery"


async def _enrol(ctx: AuthContext, user: User) -> tuple[pyotp.TOTP, list[str]]:
    setup = await mfa.setup(ctx, user.id)
    totp = pyotp.TOTP(setup.secret)
    reply = await mfa.enable(ctx, MfaCodeRequest(user_id=user.id, code=totp.now()))
    return totp, reply.recovery_codes


async def test_totp_codes_are_single_use_within_their_window(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    totp, _ = await _enrol(ctx, user)
    with pytest.raises(Conflict):
        await mfa.setup(ctx, user.id)
    login = LoginRequest(email="a@example.com", password=PASSWORD)
    with pytest.raises(Unauthorized) as err:
        await accounts.login(ctx, login)
    assert err.value.code == "mfa_required"
    with pytest.raises(Unauthorized) as err:  # the code used to enable is spent
        await accounts.login(ctx, login.model_copy(update={"totp_code": totp.now()}))
    assert err.value.code == "invalid_mfa_code"
    next_code = totp.at(time.time() + 30)
    await accounts.login(ctx, login.model_copy(update={"totp_code": next_code}))
    with pytest.raises(Unauthorized):
        await accounts.login(ctx, login.model_copy(update={"totp_code": next_code}))
    stale = totp.at(time.time() - 120)
    with pytest.raises(Unauthorized):
        await accounts.login(ctx, login.model_copy(update={"totp_code": stale}))


async def test_recovery_codes_work_once_and_disable_clears_them(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    _, codes = await _enrol(ctx, user)
    login = LoginRequest(email="a@example.com", password=PASSWORD, totp_code=codes[0].replace("-", " "))
    await accounts.login(ctx, login)
    with pytest.raises(Unauthorized):
        await accounts.login(ctx, login)
    await mfa.disable(ctx, MfaCodeRequest(user_id=user.id, code=codes[1]))
    await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    with pytest.raises(Conflict):
        await mfa.disable(ctx, MfaCodeRequest(user_id=user.id, code=codes[2]))


async def test_enable_needs_setup_and_a_right_code(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    with pytest.raises(Conflict):
        await mfa.enable(ctx, MfaCodeRequest(user_id=user.id, code="123456"))
    await mfa.setup(ctx, user.id)
    with pytest.raises(Unauthorized):
        await mfa.enable(ctx, MfaCodeRequest(user_id=user.id, code="12345x"))


def _signed(ctx: AuthContext, nonce: str, account: Any, **fields: Any) -> SiweRequest:
    values: dict[str, Any] = {
        "domain": ctx.settings.siwe_domain,
        "address": account.address,
        "uri": ctx.settings.public_url,
        "version": "1",
        "chain_id": ctx.settings.chain_id,
        "nonce": nonce,
        "issued_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    values.update(fields)
    text = SiweMessage(**values).prepare_message()
    signature = account.sign_message(encode_defunct(text=text)).signature.hex()
    return SiweRequest(message=text, signature="0x" + signature.removeprefix("0x"))


async def test_siwe_link_then_login(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    eth = EthAccount.create()
    with pytest.raises(Unauthorized) as err:
        await wallet.sign_in(ctx, _signed(ctx, (await wallet.new_nonce(ctx, SiweNonceRequest())).nonce, eth))
    assert err.value.code == "wallet_not_linked"
    link = _signed(ctx, (await wallet.new_nonce(ctx, SiweNonceRequest())).nonce, eth).model_copy(
        update={"user_id": user.id}
    )
    assert (await wallet.sign_in(ctx, link)).user.wallet_address == eth.address
    with pytest.raises(Unauthorized) as err:
        await wallet.sign_in(ctx, link)
    assert err.value.code == "invalid_nonce"
    reply = await wallet.sign_in(
        ctx, _signed(ctx, (await wallet.new_nonce(ctx, SiweNonceRequest())).nonce, eth)
    )
    assert reply.user.id == user.id


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"domain": "evil.example"}, "siwe_domain_mismatch"),
        ({"chain_id": 1}, "siwe_chain_mismatch"),
        ({"expiration_time": "2000-01-01T00:00:00Z"}, "invalid_siwe"),
    ],
)
async def test_siwe_rejects(ctx: AuthContext, fields: dict[str, Any], code: str) -> None:
    request = _signed(
        ctx, (await wallet.new_nonce(ctx, SiweNonceRequest())).nonce, EthAccount.create(), **fields
    )
    with pytest.raises(Unauthorized) as err:
        await wallet.sign_in(ctx, request)
    assert err.value.code == code


async def test_siwe_unknown_nonce_and_forged_signature(ctx: AuthContext) -> None:
    eth, other = EthAccount.create(), EthAccount.create()
    with pytest.raises(Unauthorized) as err:
        await wallet.sign_in(ctx, _signed(ctx, "NeverIssued123", eth))
    assert err.value.code == "invalid_nonce"
    good = _signed(ctx, (await wallet.new_nonce(ctx, SiweNonceRequest())).nonce, eth)
    forged = _signed(ctx, "whatever12345", other)
    with pytest.raises(Unauthorized) as err:
        await wallet.sign_in(ctx, good.model_copy(update={"signature": forged.signature}))
    assert err.value.code == "invalid_siwe"


async def test_guessing_codes_is_rate_limited(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    await mfa.setup(ctx, user.id)
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await mfa.enable(ctx, MfaCodeRequest(user_id=user.id, code="000000"))
    with pytest.raises(RateLimited):
        await mfa.enable(ctx, MfaCodeRequest(user_id=user.id, code="000000"))


async def test_siwe_nonces_are_limited_per_ip_and_purged_once_expired(ctx: AuthContext) -> None:
    """Each nonce is a row written for an unauthenticated caller: 30 a minute per IP (in
    development mode), and housekeeping deletes the expired ones, used or not."""
    from datetime import timedelta

    from sqlmodel import col, func, select

    from chainchat_auth.models import SiweNonce, utcnow

    for _ in range(30):
        await wallet.new_nonce(ctx, SiweNonceRequest(client_ip="192.0.2.7"))
    with pytest.raises(RateLimited) as limited:
        await wallet.new_nonce(ctx, SiweNonceRequest(client_ip="192.0.2.7"))
    assert limited.value.retry_after >= 1
    fresh = await wallet.new_nonce(ctx, SiweNonceRequest(client_ip="192.0.2.8"))
    async with ctx.db.session() as session:
        rows = (await session.exec(select(SiweNonce).where(col(SiweNonce.nonce) != fresh.nonce))).all()
        for row in rows:
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)
        await session.commit()
    assert await wallet.purge_nonces(ctx) == 30
    async with ctx.db.session() as session:
        assert (await session.exec(select(func.count()).select_from(SiweNonce))).one() == 1
