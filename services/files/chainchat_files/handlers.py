"""NATS side of the files service: typed request handlers, the membership question to chat, and the
durable consumer of chat's message events (references and deletions)."""

from __future__ import annotations

from nats.aio.msg import Msg

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
from chainchat_service.jetstream import InvalidEvent

QUEUE = "files"
CHAT_EVENTS_DURABLE = "files-chat-events"

ChatEvent = MessagePosted | MessageDeleted


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


def decode_chat_event(msg: Msg) -> ChatEvent:
    """The event a ``chat.message.*`` stream message carries, by its subject."""
    if msg.subject == ChatSubject.MESSAGE_POSTED:
        return MessagePosted.model_validate_json(msg.data)
    if msg.subject == ChatSubject.MESSAGE_DELETED:
        return MessageDeleted.model_validate_json(msg.data)
    raise InvalidEvent(f"no chat message event on {msg.subject}")


class FilesHandlers:
    """Adapts the file service to the ``files.*`` subjects (one queue group for all instances) and
    to chat's message events.

    The chat events come from a durable pull consumer on chat's ``CHAT_EVENTS`` stream, shared by
    every files instance: JetStream redelivers what was not acknowledged, so an event is never lost
    while this service is down; the service's reference bookkeeping makes a redelivery harmless.
    """

    def __init__(self, service: FileService) -> None:
        self.service = service

    async def register(self, bus: Bus) -> None:
        await bus.serve(FILE_ACCESS, self.file_access, queue=QUEUE)
        await bus.serve(FILE_GET, self.file_get, queue=QUEUE)

    async def consume_chat_events(self, bus: Bus, *, batch: int = 32) -> None:
        """Apply chat's message events for ever (``bus.consume``: ack after, nak on failure)."""
        await bus.consume(
            ChatSubject.EVENTS_STREAM,
            CHAT_EVENTS_DURABLE,
            decode_chat_event,
            self.on_chat_event,
            subject=ChatSubject.MESSAGE_EVENTS,
            batch=batch,
        )

    async def file_access(self, req: FileAccessRequest) -> FileAccessReply:
        record = await self.service.readable(req.user_id, req.file_id)
        return FileAccessReply(file_id=record.id, conversation_id=record.conversation_id)

    async def file_get(self, req: FileGetRequest) -> FilePublic:
        return (await self.service.readable(req.user_id, req.file_id)).to_public()

    async def on_chat_event(self, event: ChatEvent) -> None:
        if isinstance(event, MessagePosted):
            await self.service.declare_references(event.message_id, event.conversation_id, event.file_ids)
        else:
            await self.service.release_references(event.message_id, event.conversation_id, event.file_ids)
