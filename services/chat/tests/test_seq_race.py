"""Two chat instances (separate engines on one database) racing on one conversation.

Each instance has its own connection pool, like two processes: the seq must stay gap-free and
unique, retried client ids must stay one message, and nothing may be lost.
"""

from __future__ import annotations

import asyncio

from sqlmodel import col, select

from chainchat_chat.app import MIGRATIONS
from chainchat_chat.models import Message
from chainchat_protocol.chat import CreateConversationRequest, HistoryRequest, PostMessageRequest
from chainchat_service.db import Database

SENDS_PER_INSTANCE = 40


async def test_two_instances_keep_seq_gap_free(db_url: str, chat_factory, envelope_factory) -> None:
    dbs = [Database(db_url), Database(db_url)]
    await dbs[0].migrate(MIGRATIONS)
    try:
        one = chat_factory(dbs[0])
        for user in ("alice", "bob"):
            one.directory.add_user(user)
        two = chat_factory(dbs[1], one.directory)
        cid = (
            await one.conversations.create(CreateConversationRequest(user_id="alice", member_ids=["bob"]))
        ).conversation_id
        build = envelope_factory(one.directory)

        async def send(chat, sender: str, n: int, client_id: str | None = None):
            env = build(cid, sender, ["alice", "bob"])
            req = PostMessageRequest(user_id=sender, conversation_id=cid, envelope=env, client_id=client_id)
            return await chat.messages.post(req)

        sends = [send(one, "alice", n) for n in range(SENDS_PER_INSTANCE)]
        sends += [send(two, "bob", n) for n in range(SENDS_PER_INSTANCE)]
        # the same retried send arriving at both instances at once
        sends += [send(one, "alice", -1, "dup"), send(two, "alice", -1, "dup")]
        results = await asyncio.gather(*sends)

        total = 2 * SENDS_PER_INSTANCE + 1
        assert sorted({r.seq for r in results}) == list(range(1, total + 1))
        assert results[-1].message_id == results[-2].message_id
        async with dbs[1].session() as session:
            seqs = (await session.exec(select(Message.seq).order_by(col(Message.seq)))).all()
        assert list(seqs) == list(range(1, total + 1))
        page = await two.messages.history(HistoryRequest(user_id="bob", conversation_id=cid, limit=200))
        assert [m.seq for m in page.messages] == list(range(1, total + 1))
    finally:
        for db in dbs:
            await db.close()
