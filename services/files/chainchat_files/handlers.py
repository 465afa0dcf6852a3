"""NATS side of the files service: typed request handlers, the membership question to chat, and the
durable consumer of chat's message events (references and deletions)."""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from prometheus_client import Counter
from pydantic import ValidationError

from chainchat_files.service import FileService
from chainchat_protocol.chat import (
    CHAT_CONVERSATION_MEMBER,
    ChatSubject,
    ConversationRequest,
    MessageDeleted,
    MessagePosted,
)
from chainchat_protocol.errors import NotFound
from chainchat_protocol.files import (
    FILE_ACCESS,
    FILE_GET,
    FileAccessReply,
    FileAccessRequest,
    FileGetRequest,
    FilePublic,
)
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger

log = get_logger(__name__)

CHAT_EVENTS = Counter("chainchat_files_chat_events_total", "Chat events consumed", ["event", "outcome"])
CHAT_EVENTS_RETRIES = Counter("chainchat_files_chat_events_retries_total", "Chat-event consumer restarts")

QUEUE = "files"
CHAT_EVENTS_DURABLE = "files-chat-events"
CHAT_MESSAGE_EVENTS = "chat.message.*.v1"


class ChatMembership:
    """``is_member(user_id, conversation_id)`` asked to the chat service over NATS."""

    def __init__(self, bus: Bus, timeout: float = 5.0) -> None:
        self.bus = bus
        self.timeout = timeout

    async def __call__(self, user_id: str, conversation_id: str) -> bool:
        request = ConversationRequest(user_id=user_id, conversation_id=conversation_id)
        try:
            await self.bus.request(CHAT_CONVERSATION_MEMBER, request, timeout=self.timeout)
        except NotFound:
            return False
        return True


async def register_handlers(bus: Bus, service: FileService) -> None:
    """Serve the files subjects in the ``files`` queue group (instances share the load)."""

    async def file_access(req: FileAccessRequest) -> FileAccessReply:
        record = await service.readable(req.user_id, req.file_id)
        return FileAccessReply(file_id=record.id, conversation_id=record.conversation_id)

    async def file_get(req: FileGetRequest) -> FilePublic:
        return (await service.readable(req.user_id, req.file_id)).to_public()

    await bus.serve(FILE_ACCESS, file_access, queue=QUEUE)
    await bus.serve(FILE_GET, file_get, queue=QUEUE)


class ChatEventsConsumer:
    """Durable pull consumer on chat's ``CHAT_EVENTS`` stream, shared by every files instance.

    JetStream redelivers what was not acknowledged, so an event is never lost while this service
    is down; the service's reference bookkeeping makes a redelivery harmless.
    """

    def __init__(self, bus: Bus, service: FileService, *, batch: int = 32) -> None:
        self.bus = bus
        self.service = service
        self.batch = batch

    async def run(self) -> None:
        delay = 0.5
        while True:
            try:
                subscription = await self._subscribe()
                log.info("chat_events_consuming", durable=CHAT_EVENTS_DURABLE)
                delay = 0.5
                try:
                    await self._consume(subscription)
                finally:
                    # a fetch reply arriving after we stopped would make NATS' drain wait for ever
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - stream not there yet, NATS restarting: retry
                CHAT_EVENTS_RETRIES.inc()
                log.warning("chat_events_retry", error=str(exc) or type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=CHAT_EVENTS_DURABLE,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=30,
            filter_subject=CHAT_MESSAGE_EVENTS,
        )
        return await self.bus.js.pull_subscribe(
            CHAT_MESSAGE_EVENTS, durable=CHAT_EVENTS_DURABLE, stream=ChatSubject.EVENTS_STREAM, config=config
        )

    async def _consume(self, subscription: JetStreamContext.PullSubscription) -> None:
        while True:
            try:
                messages = await subscription.fetch(batch=self.batch, timeout=5)
            except (TimeoutError, NatsTimeoutError):
                continue
            for msg in messages:
                await self.handle(msg)

    async def handle(self, msg: Msg) -> None:
        """Apply one event, then acknowledge it; a failure asks for a redelivery later."""
        subject, data = msg.subject, msg.data
        event = subject.split(".")[2] if subject.count(".") >= 3 else subject
        try:
            if subject == ChatSubject.MESSAGE_POSTED:
                posted = MessagePosted.model_validate_json(data)
                await self.service.declare_references(
                    posted.message_id, posted.conversation_id, posted.file_ids
                )
            elif subject == ChatSubject.MESSAGE_DELETED:
                deleted = MessageDeleted.model_validate_json(data)
                await self.service.release_references(
                    deleted.message_id, deleted.conversation_id, deleted.file_ids
                )
            await msg.ack()
            CHAT_EVENTS.labels(event, "ok").inc()
        except ValidationError as exc:
            # a malformed event will never parse: drop it, loudly, instead of redelivering it for ever
            CHAT_EVENTS.labels(event, "invalid").inc()
            log.error("chat_event_invalid", subject=subject, error=str(exc)[:300])
            await msg.term()
        except Exception as exc:  # noqa: BLE001 - database busy, ...: let JetStream redeliver
            CHAT_EVENTS.labels(event, "retry").inc()
            log.warning("chat_event_failed", subject=subject, error=str(exc) or type(exc).__name__)
            await msg.nak(delay=2)
