"""NATS side of the chat service: typed request handlers and the event subscriptions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from chainchat_chat.directory import Directory
from chainchat_chat.fanout import FanOut
from chainchat_chat.messages import MessageService
from chainchat_chat.service import ConversationService
from chainchat_protocol import chat
from chainchat_protocol.auth import KeyChanged
from chainchat_protocol.ledger import LedgerAnchored
from chainchat_protocol.rpc import Empty, Rpc
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger

log = get_logger(__name__)

QUEUE = "chat"


@dataclass(eq=False)
class ChatHandlers:
    """Adapts the domain services to the ``chat.*`` subjects (one queue group for all instances)."""

    conversations: ConversationService
    messages: MessageService
    directory: Directory
    fanout: FanOut

    async def register(self, bus: Bus, *, concurrency: int = 1) -> None:
        """Serve every subject; up to ``concurrency`` requests of each (mostly waiting on the
        database) progress together in this instance."""
        c, m = self.conversations, self.messages
        served: list[tuple[Rpc[Any, Any], Callable[[Any], Awaitable[BaseModel]]]] = [
            (chat.CHAT_CONVERSATION_CREATE, c.create),
            (chat.CHAT_CONVERSATION_LIST, c.list_for),
            (chat.CHAT_CONVERSATION_GET, c.get),
            (chat.CHAT_MEMBERS_ADD, c.add_members),
            (chat.CHAT_MEMBERS_REMOVE, self._remove_member),
            (chat.CHAT_CONVERSATION_READ, c.mark_read),
            (chat.CHAT_TYPING, self._typing),
            (chat.CHAT_CONVERSATION_MEMBER, c.membership),
            (chat.CHAT_MESSAGE_ACCESS, c.message_access),
            (chat.CHAT_MESSAGE_POST, m.post),
            (chat.CHAT_MESSAGE_HISTORY, m.history),
            (chat.CHAT_MESSAGE_DELETE, m.delete),
        ]
        for rpc, handler in served:
            await bus.serve(rpc, handler, queue=QUEUE, concurrency=concurrency)
        # every instance evicts its own key cache; one instance tells the contacts
        await bus.subscribe(Subject.KEY_CHANGED, KeyChanged, self._evict_keys)
        await bus.subscribe(Subject.KEY_CHANGED, KeyChanged, self._announce_keys, queue=f"{QUEUE}-keys")
        await bus.subscribe(
            Subject.LEDGER_ANCHORED, LedgerAnchored, self._announce_anchored, queue=f"{QUEUE}-anchored"
        )

    async def _remove_member(self, req: chat.RemoveMemberRequest) -> Empty:
        await self.conversations.remove_member(req)
        return Empty()

    async def _typing(self, req: chat.ConversationRequest) -> Empty:
        await self.conversations.typing(req)
        return Empty()

    async def _evict_keys(self, event: KeyChanged) -> None:
        self.directory.forget(event.user_id)

    async def _announce_keys(self, event: KeyChanged) -> None:
        if not event.revoked and event.at is not None:
            await self.fanout.device_added(event)
        told = await self.fanout.key_changed(event.user_id)
        log.info("key_change_announced", user_id=event.user_id, users=told)

    async def _announce_anchored(self, event: LedgerAnchored) -> None:
        if not event.message_ids:
            return
        told = await self.fanout.anchored(event.message_ids, event.head_index)
        log.info("anchored_announced", head=event.head_index, messages=len(event.message_ids), users=told)
