"""Rate limits, the mail queue's retry/back-off, the ledger outbox and signing-key rotation."""

from __future__ import annotations

import json
from typing import Any

import aiosmtplib
import jwt
import pytest
from sqlmodel import col, select

from chainchat_auth import accounts, admin
from chainchat_auth.audit import canonical_event
from chainchat_auth.context import AuthContext
from chainchat_auth.mailer import MailSender, backoff_seconds
from chainchat_auth.models import AuditEventRow, MailMessage
from chainchat_auth.ratelimit import Limit, RateLimiter
from chainchat_protocol.auth import EmailRequest, LoginRequest, RegisterRequest, RotateKeyRequest
from chainchat_protocol.errors import RateLimited, Unauthorized
from chainchat_protocol.log_entry import LogEntry, digest_object
from chainchat_service.outbox import OutboxRelay

PASSWORD = "correct horse battery"


def test_limit_parsing() -> None:
    assert Limit.parse("5/900") == Limit(5, 900)
    assert Limit.parse("10/600", factor=100) == Limit(1000, 600)
    with pytest.raises(ValueError, match="bad rate limit"):
        Limit.parse("0/60")


async def test_moving_window_with_retry_after(ctx: AuthContext) -> None:
    now = [1000.0]
    limiter = RateLimiter(ctx.db, now=lambda: now[0])
    limit = Limit(2, 60)
    await limiter.consume("k", limit)
    now[0] += 30
    await limiter.consume("k", limit)
    with pytest.raises(RateLimited) as err:
        await limiter.consume("k", limit)
    assert err.value.retry_after == 30
    assert err.value.headers["Retry-After"] == "30"
    now[0] += 31  # the first event left the window
    await limiter.consume("k", limit)
    await limiter.clear("k")
    await limiter.check("k", limit)
    await limiter.hit("other")
    now[0] += 11
    assert await limiter.purge(max_window_s=10) == 1


async def test_login_failures_lock_the_account_not_the_right_ip(ctx: AuthContext, h: Any) -> None:
    await h.make_user(ctx, "a@example.com")
    for _ in range(5):
        with pytest.raises(Unauthorized):
            await accounts.login(
                ctx, LoginRequest(email="a@example.com", password="wrong one!", client_ip="10.0.0.1")
            )
    with pytest.raises(RateLimited):
        await accounts.login(
            ctx, LoginRequest(email="a@example.com", password=PASSWORD, client_ip="10.0.0.2")
        )


async def test_ip_limit_and_test_environment_factor(ctx: AuthContext) -> None:
    ctx.settings.rate_login_fail_ip = "3/60"
    for n in range(3):
        with pytest.raises(Unauthorized):
            await accounts.login(
                ctx, LoginRequest(email=f"x{n}@example.com", password="nope nope", client_ip="10.9.9.9")
            )
    with pytest.raises(RateLimited):
        await accounts.login(
            ctx, LoginRequest(email="y@example.com", password="nope nope", client_ip="10.9.9.9")
        )
    ctx.settings.environment = "test"
    assert ctx.limit("register_ip", per_ip=True).count == 10 * ctx.settings.test_ip_limit_factor
    assert ctx.limit("login_fail_ip", per_ip=True).count == 3  # login limits stay exact
    assert ctx.limit("register_email").count == 3


async def test_reset_requests_are_limited_per_email_even_for_unknown_addresses(ctx: AuthContext) -> None:
    for _ in range(3):
        await accounts.request_password_reset(ctx, EmailRequest(email="ghost@example.com"))
    with pytest.raises(RateLimited):
        await accounts.request_password_reset(ctx, EmailRequest(email="ghost@example.com"))


async def test_mail_retries_with_backoff_then_scrubs_the_body(ctx: AuthContext, monkeypatch: Any) -> None:
    await accounts.register(ctx, RegisterRequest(email="a@example.com", password=PASSWORD, display_name="A"))
    sent: list[Any] = []

    async def smtp_down(message: Any, **_: Any) -> None:
        raise aiosmtplib.SMTPConnectError("connection refused")

    async def smtp_up(message: Any, **options: Any) -> None:
        sent.append((message, options))

    sender = MailSender(ctx.db, ctx.settings)
    monkeypatch.setattr(aiosmtplib, "send", smtp_down)
    assert await sender.send_due() == 1
    assert await sender.send_due() == 0  # backing off
    async with ctx.db.session() as session:
        row = (await session.exec(select(MailMessage))).one()
        assert (row.attempts, row.sent_at) == (1, None)
        assert "SMTPConnectError" in (row.last_error or "")
        row.next_attempt_at = row.created_at  # pretend the back-off has passed
        session.add(row)
        await session.commit()
    monkeypatch.setattr(aiosmtplib, "send", smtp_up)
    assert await sender.send_due() == 1
    message, options = sent[0]
    assert message["To"] == "a@example.com"
    assert {p.get_content_type() for p in message.iter_parts()} == {"text/plain", "text/html"}
    assert options["hostname"] == ctx.settings.smtp_host
    async with ctx.db.session() as session:
        row = (await session.exec(select(MailMessage))).one()
    assert row.sent_at is not None
    assert (row.text_body, row.html_body) == ("", "")
    assert [backoff_seconds(n) for n in (1, 2, 3, 10)] == [1.0, 2.0, 4.0, 60.0]


class _FakeJs:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(self, subject: str, payload: bytes, timeout: float, headers: dict[str, str]) -> None:
        self.published.append((subject, payload, headers))


class _FakeBus:
    def __init__(self) -> None:
        self.js = _FakeJs()
        self.nc = self
        self.core: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        self.core.append((subject, payload))


async def test_audit_events_reach_the_ledger_stream_with_their_digest(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    bus = _FakeBus()
    relay = OutboxRelay(ctx.db, bus, "auth")  # type: ignore[arg-type]
    assert await relay.publish_pending() > 0
    async with ctx.db.session() as session:
        events = (await session.exec(select(AuditEventRow).order_by(col(AuditEventRow.created_at)))).all()
    entries = {e.id: e for _, p, _ in bus.js.published for e in _entries(p)}
    for event in events:
        entry = entries[event.id]
        assert entry.kind == "audit"
        assert entry.digest == digest_object(canonical_event(event)) == event.digest
        assert json.loads(event.detail) == canonical_event(event)["detail"]
    assert {e.user_id for e in events} == {user.id}
    # one entry: its kind:id; consecutive audit entries travel as one batch, named by their ids
    assert all(h_["Nats-Msg-Id"].startswith(("audit:", "entries:")) for _, _, h_ in bus.js.published)


def _entries(payload: bytes) -> list[LogEntry]:
    """The log entries of a LEDGER stream message: one JSON object, or a batch (a JSON array)."""
    items = json.loads(payload)
    return [LogEntry.model_validate(item) for item in (items if isinstance(items, list) else [items])]


async def test_rotation_keeps_the_previous_key_verifiable(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    before = await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    jwks = await admin.rotate_signing_key(ctx, RotateKeyRequest(actor_id=user.id))
    after = await accounts.login(ctx, LoginRequest(email="a@example.com", password=PASSWORD))
    old_kid = jwt.get_unverified_header(before.access_token)["kid"]
    new_kid = jwt.get_unverified_header(after.access_token)["kid"]
    assert old_kid != new_kid
    assert {old_kid, new_kid} <= {k.kid for k in jwks.keys}
