"""The chat service process: database, NATS handlers, event fan-out, the outbox relay."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from chainchat_chat.directory import NatsDirectory
from chainchat_chat.fanout import FanOut
from chainchat_chat.handlers import ChatHandlers
from chainchat_chat.messages import MessageService
from chainchat_chat.notify import NatsNotifier
from chainchat_chat.service import ConversationService
from chainchat_chat.settings import ChatSettings
from chainchat_protocol.chat import ChatSubject
from chainchat_service.bus import Bus
from chainchat_service.db import Database
from chainchat_service.logging import get_logger
from chainchat_service.outbox import OutboxRelay, ensure_ledger_stream
from chainchat_service.runtime import ServiceRuntime
from chainchat_service.web import create_service_app

log = get_logger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"

CHAT_EVENTS_STREAM = StreamConfig(
    name=ChatSubject.EVENTS_STREAM,
    subjects=[ChatSubject.MESSAGE_POSTED, ChatSubject.MESSAGE_DELETED],
    retention=RetentionPolicy.LIMITS,
    storage=StorageType.FILE,
    max_age=7 * 24 * 3600,
    duplicate_window=600,
)


async def ensure_chat_events_stream(bus: Bus) -> None:
    """Create the stream that keeps chat events for consumers that were down (files)."""
    await bus.ensure_stream(CHAT_EVENTS_STREAM)


async def setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Open the database (migrated), wire the services, subscribe once NATS is up."""
    settings: ChatSettings = app.state.settings
    db = Database(settings.sqlalchemy_url())
    await db.migrate(MIGRATIONS)
    runtime.add_check("database", db.ping)
    bus = runtime.bus
    relay = OutboxRelay(db, bus, "chat")
    directory = NatsDirectory(bus, ttl_s=settings.device_cache_ttl_s)
    notifier = NatsNotifier(bus)
    messages = MessageService(db, directory, notifier, on_commit=relay.wake)
    handlers = ChatHandlers(
        ConversationService(db, directory, notifier, settings.conversation_create_limit()),
        messages,
        directory,
        FanOut(db, notifier),
    )

    async def on_connected(bus: Bus) -> None:
        await ensure_ledger_stream(bus)
        await ensure_chat_events_stream(bus)
        await handlers.register(bus, concurrency=settings.handler_concurrency)
        runtime.spawn(relay.run(), "chat-outbox-relay")

    runtime.on_connected(on_connected)
    app.state.db = db
    app.state.messages = messages


async def teardown(app: FastAPI, runtime: ServiceRuntime) -> None:
    messages: MessageService | None = getattr(app.state, "messages", None)
    if messages is not None:
        await messages.commits.close()
    db: Database | None = getattr(app.state, "db", None)
    if db is not None:
        await db.close()


def create_app(settings: ChatSettings | None = None) -> FastAPI:
    settings = settings or ChatSettings()
    return create_service_app(settings, title="ChainChat chat", setup=setup, teardown=teardown)
