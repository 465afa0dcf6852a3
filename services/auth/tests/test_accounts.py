"""Sign-up, verification, login, refresh, logout and reset: the service logic without NATS/HTTP."""

from __future__ import annotations

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import select

from chainchat_auth import accounts, admin, sessions
from chainchat_auth.context import AuthContext
from chainchat_auth.models import AuditEventRow, AuthSession, User
from chainchat_auth.passwords import check_password_policy
from chainchat_protocol.auth import (
    AUDIENCE,
    ISSUER,
    AdminActionRequest,
    EmailRequest,
    LoginRequest,
    LogoutRequest,
    PasswordResetBody,
    RefreshRequest,
    RegisterRequest,
)
from chainchat_protocol.b64 import b64d
from chainchat_protocol.errors import BadRequest, Conflict, Forbidden, Unauthorized, ValidationFailed
from chainchat_service.outbox import OutboxMessage

PASSWORD = "correct horse battery"


async def test_first_verified_account_is_admin_then_pending_approval(ctx: AuthContext, h: type) -> None:
    first = await h.make_user(ctx, "First@Example.com")
    second = await h.make_user(ctx, "second@example.com")
    assert (first.email, first.role, first.status) == ("first@example.com", "admin", "active")
    assert (second.role, second.status) == ("member", "pending_approval")
    with pytest.raises(Forbidden) as err:
        await accounts.login(ctx, LoginRequest(email="second@example.com", password=PASSWORD))
    assert err.value.code == "pending_approval"


async def test_duplicate_email_is_a_conflict_case_insensitively(ctx: AuthContext, h: type) -> None:
    await accounts.register(ctx, RegisterRequest(email="a@example.com", password=PASSWORD, display_name="A"))
    with pytest.raises(Conflict) as err:
        await accounts.register(
            ctx, RegisterRequest(email="A@EXAMPLE.COM", password=PASSWORD, display_name="B")
        )
    assert err.value.code == "email_taken"


async def test_verification_link_is_single_use(ctx: AuthContext, h: type) -> None:
    await accounts.register(ctx, RegisterRequest(email="a@example.com", password=PASSWORD, display_name="A"))
    token = h.link_token(await h.last_mail(ctx, "a@example.com"))
    assert (await accounts.verify_email(ctx, token)).status == "active"
    with pytest.raises(BadRequest) as err:
        await accounts.verify_email(ctx, token)
    assert err.value.code == "invalid_token"


async def test_unverified_login_is_refused_after_password_check(ctx: AuthContext, h: type) -> None:
    await accounts.register(ctx, RegisterRequest(email="a@example.com", password=PASSWORD, display_name="A"))
    with pytest.raises(Unauthorized):
        await accounts.login(ctx, LoginRequest(email="a@example.com", password="wrong password!"))
    with pytest.raises(Forbidden) as err:
        await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    assert err.value.code == "email_not_verified"


async def test_login_issues_an_eddsa_token_the_jwks_verifies(ctx: AuthContext, h: type) -> None:
    user = await h.make_user(ctx, "a@example.com")
    reply = await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    header = jwt.get_unverified_header(reply.access_token)
    jwk = next(k for k in (await ctx.signer.jwks()).keys if k.kid == header["kid"])
    key = Ed25519PublicKey.from_public_bytes(b64d(jwk.x))
    claims = jwt.decode(reply.access_token, key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER)
    assert claims["sub"] == user.id
    assert claims["role"] == "admin"
    assert claims["exp"] - claims["iat"] == 900
    assert {"sid", "jti"} <= claims.keys()
    assert reply.user.email == "a@example.com"
    assert "password_hash" not in reply.model_dump_json()


async def test_unknown_email_and_wrong_password_look_the_same(
    ctx: AuthContext, h: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No account enumeration by timing: an unknown e-mail costs one argon2id verification with
    the same parameters as a real account's (the dummy hash), proven by what runs, not by a clock."""
    user = await h.make_user(ctx, "a@example.com")
    hasher = ctx.passwords._hasher
    verified: list[str] = []

    class Recording:
        def verify(self, stored: str, password: str) -> bool:
            verified.append(stored)
            return hasher.verify(stored, password)

        def __getattr__(self, name: str) -> object:
            return getattr(hasher, name)

    monkeypatch.setattr(ctx.passwords, "_hasher", Recording())
    for email in ("a@example.com", "nobody@example.com"):
        with pytest.raises(Unauthorized) as err:
            await accounts.login(ctx, LoginRequest(email=email, password="not the password"))
        assert (err.value.code, err.value.message) == ("invalid_credentials", "e-mail or password is wrong")
    assert len(verified) == 2, "each attempt runs exactly one argon2 verification"
    real, dummy = verified
    assert real == user.password_hash
    assert dummy != real
    # same algorithm, version and cost ($argon2id$v=19$m=…,t=…,p=…$): the same work either way
    assert dummy.split("$")[1:4] == real.split("$")[1:4]


async def test_refresh_rotates_and_reuse_revokes_the_family(ctx: AuthContext, h: type) -> None:
    await h.make_user(ctx, "a@example.com")
    first = await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    second = await sessions.refresh(ctx, RefreshRequest(refresh_token=first.refresh_token))
    assert second.refresh_token != first.refresh_token
    with pytest.raises(Unauthorized) as err:
        await sessions.refresh(ctx, RefreshRequest(refresh_token=first.refresh_token))
    assert err.value.code == "refresh_token_reused"
    with pytest.raises(Unauthorized) as err:
        await sessions.refresh(ctx, RefreshRequest(refresh_token=second.refresh_token))
    assert err.value.code == "session_revoked"
    revoked = await sessions.revoked_list(ctx)
    sid = jwt.decode(second.access_token, options={"verify_signature": False})["sid"]
    assert sid in {s.session_id for s in revoked.sessions}


async def test_logout_revokes_and_queues_revocation_event(ctx: AuthContext, h: type) -> None:
    user = await h.make_user(ctx, "a@example.com")
    reply = await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    sid = jwt.decode(reply.access_token, options={"verify_signature": False})["sid"]
    await sessions.logout(ctx, LogoutRequest(user_id=user.id, session_id=sid))
    with pytest.raises(Unauthorized):
        await sessions.refresh(ctx, RefreshRequest(refresh_token=reply.refresh_token))
    async with ctx.db.session() as session:
        rows = (await session.exec(select(OutboxMessage).where(OutboxMessage.jetstream == False))).all()  # noqa: E712
    assert any(sid.encode() in r.payload for r in rows)


async def test_password_reset_sets_password_and_revokes_sessions(ctx: AuthContext, h: type) -> None:
    user = await h.make_user(ctx, "a@example.com")
    await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    await accounts.request_password_reset(ctx, EmailRequest(email="a@example.com"))
    token = h.link_token(await h.last_mail(ctx, "a@example.com"))
    with pytest.raises(ValidationFailed):
        await accounts.reset_password(ctx, PasswordResetBody(token=token, password="password123"))
    await accounts.reset_password(ctx, PasswordResetBody(token=token, password="a brand new passphrase"))
    with pytest.raises(BadRequest):
        await accounts.reset_password(ctx, PasswordResetBody(token=token, password="another new passphrase"))
    await accounts.login(ctx, LoginRequest(email="a@example.com", password="a brand new passphrase"))
    async with ctx.db.session() as session:
        live = (await session.exec(select(AuthSession).where(AuthSession.user_id == user.id))).all()
    assert sum(1 for s in live if s.revoked_at is None) == 1


async def test_reset_request_for_unknown_email_is_silent(ctx: AuthContext, h: type) -> None:
    await accounts.request_password_reset(ctx, EmailRequest(email="ghost@example.com"))


@pytest.mark.parametrize("password", ["short", "password123", "1234567890", "aaaaaaaaaaaa", "a@example.com"])
def test_password_policy_rejects(password: str) -> None:
    with pytest.raises(ValidationFailed):
        check_password_policy(password, email="a@example.com", display_name="Alice")


async def test_disable_revokes_sessions_and_last_admin_is_kept(ctx: AuthContext, h: type) -> None:
    boss = await h.make_user(ctx, "boss@example.com")
    member = await h.make_user(ctx, "m@example.com")
    await admin.act(ctx, AdminActionRequest(actor_id=boss.id, user_id=member.id, action="approve"))
    await accounts.login(ctx, LoginRequest(email="m@example.com", password=PASSWORD))
    await admin.act(ctx, AdminActionRequest(actor_id=boss.id, user_id=member.id, action="disable"))
    with pytest.raises(Forbidden) as err:
        await accounts.login(ctx, LoginRequest(email="m@example.com", password=PASSWORD))
    assert err.value.code == "account_disabled"
    with pytest.raises(Conflict) as err:
        await admin.act(ctx, AdminActionRequest(actor_id=boss.id, user_id=boss.id, action="disable"))
    assert err.value.code == "last_admin"
    async with ctx.db.session() as session:
        types = [e.type for e in (await session.exec(select(AuditEventRow))).all()]
        stored = await session.get(User, member.id)
    assert {"register", "email_verified", "login", "user_approved", "user_disabled"} <= set(types)
    assert stored is not None
    assert stored.status == "disabled"
