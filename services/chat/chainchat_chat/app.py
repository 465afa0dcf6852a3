"""The chat service process: database, NATS handlers, event fan-out, the outbox relay."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass
class Chat:
    """Everything one chat instance runs, wired together."""

    settings: ChatSettings
    db: Database
    relay: OutboxRelay
    messages: MessageService
    handlers: ChatHandlers


def build_chat(settings: ChatSettings, db: Database, bus: Bus) -> Chat:
    relay = OutboxRelay(db, bus, "chat")
    directory = NatsDirectory(bus, ttl_s=settings.device_cache_ttl_s)
    notifier = NatsNotifier(bus)
    messages = MessageService(db, directory, notifier, on_commit=relay.wake)
    conversations = ConversationService(db, directory, notifier, settings.conversation_create_limit())
    handlers = ChatHandlers(conversations, messages, directory, FanOut(db, notifier))
    return Chat(settings, db, relay, messages, handlers)


async def setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Open the database (migrated), wire the services, subscribe once NATS is up."""
    settings: ChatSettings = app.state.settings
    db = Database(settings.sqlalchemy_url())
    await db.migrate(MIGRATIONS)
    runtime.add_check("database", db.ping)
    chat = build_chat(settings, db, runtime.bus)
    app.state.chat = chat

    async def on_connected(bus: Bus) -> None:
        await ensure_ledger_stream(bus)
        await ensure_chat_events_stream(bus)
        await chat.handlers.register(bus, concurrency=settings.handler_concurrency)
        runtime.spawn(chat.relay.run(), "chat-outbox-relay")

    runtime.on_connected(on_connected)


async def teardown(app: FastAPI, runtime: ServiceRuntime) -> None:
    chat: Chat | None = getattr(app.state, "chat", None)
    if chat is not None:
        await chat.messages.commits.close()
        await chat.db.close()


def create_app(settings: ChatSettings | None = None) -> FastAPI:
    settings = settings or ChatSettings()
    return create_service_app(settings, title="ChainChat chat", setup=setup, teardown=teardown)
