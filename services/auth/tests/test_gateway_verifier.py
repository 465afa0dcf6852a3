"""The gateway's local token verifier against tokens minted by the auth service's signer
(kept with the auth tests: the two sides of one contract, checked together)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chainchat_auth import accounts
from chainchat_auth.context import AuthContext
from chainchat_gateway.security import TokenVerifier
from chainchat_protocol.auth import (
    AUTH_JWKS,
    AUTH_REVOKED_LIST,
    LoginRequest,
    RevokedListReply,
    RevokedSession,
)
from chainchat_protocol.errors import Unauthorized, Unavailable


class _AuthOverNats:
    """Answers the verifier's two subjects from a real AuthContext; can be switched off."""

    def __init__(self, ctx: AuthContext) -> None:
        self.ctx = ctx
        self.calls = 0
        self.up = True

    async def request(self, rpc: Any, req: Any, timeout: float = 5.0) -> Any:
        if not self.up:
            raise Unavailable("auth is down")
        if rpc is AUTH_JWKS:
            self.calls += 1
            return await self.ctx.signer.jwks()
        assert rpc is AUTH_REVOKED_LIST
        return RevokedListReply(sessions=[])


async def _token(ctx: AuthContext, h: Any) -> str:
    await h.make_user(ctx, "a@example.com")
    reply = await accounts.login(ctx, LoginRequest(email="a@example.com", password="correct horse battery"))
    return reply.access_token


@pytest.fixture
def auth_bus(ctx: AuthContext) -> _AuthOverNats:
    return _AuthOverNats(ctx)


async def test_verifies_locally_after_one_jwks_fetch(
    ctx: AuthContext, h: Any, auth_bus: _AuthOverNats
) -> None:
    token = await _token(ctx, h)
    verifier = TokenVerifier(auth_bus)  # type: ignore[arg-type]
    principal = await verifier.verify(token)
    for _ in range(20):
        assert await verifier.verify(token) == principal
    assert auth_bus.calls == 1
    assert principal.role == "admin"


async def test_unknown_kids_refetch_a_bounded_number_of_times(
    ctx: AuthContext, auth_bus: _AuthOverNats
) -> None:
    verifier = TokenVerifier(auth_bus, refetches=3, per_seconds=60)  # type: ignore[arg-type]
    await verifier.refresh_keys()
    stranger = Ed25519PrivateKey.generate()
    for n in range(10):
        forged = jwt.encode({"sub": "x"}, stranger, algorithm="EdDSA", headers={"kid": f"kid-{n}"})
        with pytest.raises(Unauthorized) as err:
            await verifier.verify(forged)
        assert err.value.code == "invalid_token"
    assert auth_bus.calls == 1 + 3


async def test_revoked_sessions_expire_from_the_set(
    ctx: AuthContext, h: Any, auth_bus: _AuthOverNats
) -> None:
    token = await _token(ctx, h)
    verifier = TokenVerifier(auth_bus)  # type: ignore[arg-type]
    principal = await verifier.verify(token)
    verifier.revoke([RevokedSession(session_id=principal.session_id, expires_at=int(time.time()) + 60)])
    with pytest.raises(Unauthorized) as err:
        await verifier.verify(token)
    assert err.value.code == "token_revoked"
    verifier.revoke([RevokedSession(session_id="old", expires_at=int(time.time()) - 1)])
    assert not verifier.is_revoked("old")


async def test_no_keys_and_auth_down_is_503_not_401(
    ctx: AuthContext, h: Any, auth_bus: _AuthOverNats
) -> None:
    token = await _token(ctx, h)
    auth_bus.up = False
    with pytest.raises(Unavailable):
        await TokenVerifier(auth_bus).verify(token)  # type: ignore[arg-type]


async def test_cached_tokens_still_honour_revocation_and_expiry(
    ctx: AuthContext, h: Any, auth_bus: _AuthOverNats
) -> None:
    token = await _token(ctx, h)
    verifier = TokenVerifier(auth_bus)  # type: ignore[arg-type]
    principal = await verifier.verify(token)
    assert await verifier.verify(token) == principal  # second time from the cache
    assert token in verifier._verified

    real_exp = verifier._verified[token][1]
    # an entry past its expiry is never trusted: the token is checked again (and here, since
    # the token itself is still valid, cached again with its real expiry)
    verifier._verified[token] = (principal, time.time() - 60)
    assert await verifier.verify(token) == principal
    assert verifier._verified[token][1] == real_exp

    verifier.revoke([RevokedSession(session_id=principal.session_id, expires_at=int(time.time()) + 900)])
    with pytest.raises(Unauthorized) as revoked:
        await verifier.verify(token)
    assert revoked.value.code == "token_revoked"


async def test_tampered_token_is_not_served_from_the_cache(
    ctx: AuthContext, h: Any, auth_bus: _AuthOverNats
) -> None:
    token = await _token(ctx, h)
    verifier = TokenVerifier(auth_bus)  # type: ignore[arg-type]
    await verifier.verify(token)
    head, body, sig = token.split(".")
    forged = f"{head}.{body}.{sig[:-2]}{'AA' if not sig.endswith('AA') else 'BB'}"
    with pytest.raises(Unauthorized):
        await verifier.verify(forged)
