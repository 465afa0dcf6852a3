"""The auth service process: connects to NATS, serves its handlers, health and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from chainchat_auth import wallet
from chainchat_auth.context import AuthContext
from chainchat_auth.handlers import AuthHandlers
from chainchat_auth.mailer import MailSender
from chainchat_auth.passwords import Passwords
from chainchat_auth.ratelimit import RateLimiter
from chainchat_auth.settings import AuthSettings
from chainchat_auth.signing import Signer, reseal_all
from chainchat_service.bus import Bus
from chainchat_service.db import Database
from chainchat_service.loops import Backoff
from chainchat_service.outbox import OutboxRelay, ensure_ledger_stream
from chainchat_service.runtime import ServiceRuntime
from chainchat_service.web import create_service_app

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def build_context(settings: AuthSettings, db: Database) -> AuthContext:
    """Migrate the database and assemble the service's collaborators."""
    await db.migrate(MIGRATIONS)
    vault = settings.vault()
    await reseal_all(db, vault)
    signer = Signer(db, settings.jwt_ttl_s, vault)
    await signer.ensure_key()
    passwords = Passwords(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    return AuthContext(
        settings=settings, db=db, passwords=passwords, signer=signer, limiter=RateLimiter(db), vault=vault
    )


def housekeeping(ctx: AuthContext) -> Callable[[], Awaitable[float]]:
    """A loop step: drop rate-limit events older than every window and expired SIWE nonces; once
    a minute."""

    async def step() -> float:
        await ctx.limiter.purge(max_window_s=24 * 3600)
        await wallet.purge_nonces(ctx)
        return 60.0

    return step


@dataclass
class Auth:
    """Everything one auth instance runs, wired together."""

    ctx: AuthContext
    mailer: MailSender
    relay: OutboxRelay
    handlers: AuthHandlers


async def build_auth(settings: AuthSettings, db: Database, bus: Bus) -> Auth:
    """The composition root: the context (migrated database, signing key), mail and outbox."""
    ctx = await build_context(settings, db)
    mailer = MailSender(db, settings)
    relay = OutboxRelay(db, bus, "auth")

    def after_commit() -> None:
        relay.wake()
        mailer.wake()

    ctx.after_commit = after_commit
    return Auth(ctx, mailer, relay, AuthHandlers(ctx))


async def setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Open the database, run migrations, start the mail loop; serve handlers once NATS is up."""
    settings: AuthSettings = app.state.settings
    db = Database(settings.sqlalchemy_url())
    auth = await build_auth(settings, db, runtime.bus)
    app.state.auth = auth
    runtime.add_check("database", db.ping)
    runtime.spawn(auth.mailer.run(), "auth-mail")
    runtime.supervise("auth-housekeeping", housekeeping(auth.ctx), backoff=Backoff(60.0, 60.0),
                      describe=lambda exc: type(exc).__name__)  # fmt: skip

    async def on_connected(bus: Bus) -> None:
        await ensure_ledger_stream(bus)
        await auth.handlers.register(bus)
        runtime.spawn(auth.relay.run(), "auth-outbox")

    runtime.on_connected(on_connected)


async def teardown(app: FastAPI, runtime: ServiceRuntime) -> None:
    auth: Auth | None = getattr(app.state, "auth", None)
    if auth is not None:
        await auth.ctx.db.close()


def create_app(settings: AuthSettings | None = None) -> FastAPI:
    settings = settings or AuthSettings()
    return create_service_app(settings, title="ChainChat auth", setup=setup, teardown=teardown)
