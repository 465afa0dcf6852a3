"""Turn events about users and log entries into deliveries for the people concerned.

* ``KeyChanged`` (auth): every user who shares a conversation with the owner (and the owner's own
  other devices) gets ``{"type": "key_changed", "user_id"}`` — nobody else learns of it. A key
  added to the account also gives the owner's connected devices ``{"type": "device_added",
  "user_id", "key_id", "label", "at"}`` (the label is the owner's, so only the owner gets it).
* anchored tree heads (ledger): the message ids covered by the new head are mapped to their
  conversations, and each member gets ``{"type": "anchored", "message_ids", "head_index"}`` with
  only the ids of messages they may see.

Both subscriptions use a queue group, so with several chat instances each event is fanned out once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlmodel import col, select

from chainchat_chat.models import Member, Message
from chainchat_chat.notify import Notifier
from chainchat_protocol.auth import KeyChanged
from chainchat_protocol.chat import AnchoredFrame, DeviceAddedFrame, KeyChangedFrame
from chainchat_service.db import Database

_CHUNK = 500


class FanOut:
    def __init__(self, db: Database, notifier: Notifier) -> None:
        self.db = db
        self.notifier = notifier

    async def key_changed(self, user_id: str) -> int:
        """Tell the user's contacts; return how many users were told."""
        async with self.db.session() as session:
            mine = select(Member.conversation_id).where(Member.user_id == user_id)
            rows = await session.exec(
                select(Member.user_id).where(col(Member.conversation_id).in_(mine)).distinct()
            )
            users = set(rows.all()) | {user_id}
        await self.notifier.deliver(users, KeyChangedFrame(user_id=user_id))
        return len(users)

    async def device_added(self, event: KeyChanged) -> None:
        """Tell the owner's devices that a device key was added to the account."""
        assert event.at is not None
        frame = DeviceAddedFrame(user_id=event.user_id, key_id=event.key_id, label=event.label, at=event.at)
        await self.notifier.deliver([event.user_id], frame)

    async def anchored(self, message_ids: Sequence[str], head_index: int) -> int:
        """Tell each member which of their messages the head covers; return how many users."""
        per_user: dict[str, list[str]] = defaultdict(list)
        async with self.db.session() as session:
            for start in range(0, len(message_ids), _CHUNK):
                chunk = list(message_ids[start : start + _CHUNK])
                rows = await session.exec(
                    select(Message.id, Member.user_id)
                    .join(Member, col(Member.conversation_id) == col(Message.conversation_id))
                    .where(col(Message.id).in_(chunk), col(Message.seq) > col(Member.joined_seq))
                )
                for message_id, user_id in rows.all():
                    per_user[user_id].append(message_id)
        for user_id, ids in per_user.items():
            await self.notifier.deliver(
                [user_id], AnchoredFrame(message_ids=sorted(set(ids)), head_index=head_index)
            )
        return len(per_user)
