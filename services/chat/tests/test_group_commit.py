"""Group commit: sends arriving together share a transaction and keep every guarantee of one alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import col, func, select

from chainchat_chat.group_commit import BATCH_SIZE
from chainchat_chat.messages import MessageService
from chainchat_chat.models import Message, OutboxMessage
from chainchat_protocol.chat import CreateConversationRequest, PostMessageRequest, RemoveMemberRequest
from chainchat_protocol.errors import NotFound
from chainchat_service.db import Database

USERS = ["alice", "bob", "carol", "dave"]


@pytest.fixture
async def conversations(chat) -> list[str]:
    for user in USERS:
        chat.directory.add_user(user)
    ids = []
    for other in ("bob", "carol"):
        created = await chat.conversations.create(
            CreateConversationRequest(user_id="alice", member_ids=[other])
        )
        ids.append(created.conversation_id)
    group = await chat.conversations.create(
        CreateConversationRequest(user_id="alice", member_ids=["bob", "carol", "dave"], title="g")
    )
    return [*ids, group.conversation_id]


def _members(cid: str, conversations: list[str]) -> list[str]:
    return {0: ["alice", "bob"], 1: ["alice", "carol"], 2: USERS}[conversations.index(cid)]


def _requests(
    plan: list[tuple[str, str]], conversations: list[str], envelope_for: Any
) -> list[PostMessageRequest]:
    """Alice's sends, one per ``(conversation_id, client_id)`` of ``plan``."""
    return [
        PostMessageRequest(
            user_id="alice",
            conversation_id=cid,
            client_id=client_id,
            envelope=envelope_for(cid, "alice", _members(cid, conversations)),
        )  # fmt: skip
        for cid, client_id in plan
    ]


def _batches() -> tuple[float, float]:
    """(transactions, sends) the batch-size histogram has seen so far."""
    samples = {s.name: s.value for s in BATCH_SIZE.collect()[0].samples}
    return samples["chainchat_chat_commit_batch_size_count"], samples["chainchat_chat_commit_batch_size_sum"]


async def test_concurrent_sends_share_transactions_and_stay_gap_free(
    chat, conversations, envelope_for
) -> None:
    before = _batches()
    plan = [(conversations[n % 3], f"c{n}") for n in range(60)]
    reqs = _requests(plan, conversations, envelope_for)
    results = await asyncio.gather(*(chat.messages.post(r) for r in reqs))
    transactions, sends = (now - then for now, then in zip(_batches(), before, strict=True))
    assert sends == 60
    assert transactions < 60  # some sends were stored together
    for cid in conversations:
        # per conversation: seq 1..20, each once (concurrent sends have no order to keep)
        assert sorted(r.seq for r in results if r.conversation_id == cid) == list(range(1, 21))
    async with chat.db.session() as session:
        assert (await session.exec(select(func.count()).select_from(OutboxMessage))).one() == 60
        stored = (await session.exec(select(Message.client_id).order_by(col(Message.conversation_id)))).all()
    assert sorted(stored) == sorted(c for _, c in plan)
    assert len(chat.notifier.of_type("message")) == 60


async def test_a_send_repeated_in_one_batch_is_one_message(chat, conversations, envelope_for) -> None:
    cid = conversations[0]
    env = envelope_for(cid, "alice", ["alice", "bob"])
    req = PostMessageRequest(user_id="alice", conversation_id=cid, envelope=env, client_id="same")
    other = PostMessageRequest(
        user_id="alice", conversation_id=cid, envelope=envelope_for(cid, "alice", ["alice", "bob"])
    )
    first, second, third, again = await asyncio.gather(
        chat.messages.post(req), chat.messages.post(other), chat.messages.post(req), chat.messages.post(req)
    )
    assert first == third == again
    assert sorted([first.seq, second.seq]) == [1, 2]
    assert len(chat.notifier.of_type("message")) == 2
    later = await chat.messages.post(req)  # a retry long after: the stored result
    assert later == first


async def test_a_removed_member_in_a_batch_is_refused_and_the_rest_stored(
    chat, conversations, envelope_for
) -> None:
    group = conversations[2]
    # warm the member cache, then remove dave behind its back (as another instance would)
    await chat.messages.post(
        PostMessageRequest(user_id="dave", conversation_id=group, envelope=envelope_for(group, "dave", USERS))
    )
    await chat.conversations.remove_member(
        RemoveMemberRequest(user_id="alice", conversation_id=group, member_id="dave")
    )
    chat.messages._members[group] = USERS  # stale, as in an instance that did not see the change
    stay = ["alice", "bob", "carol"]
    outcomes = await asyncio.gather(
        chat.messages.post(PostMessageRequest(
            user_id="dave", conversation_id=group, envelope=envelope_for(group, "dave", USERS)
        )),
        chat.messages.post(PostMessageRequest(
            user_id="bob", conversation_id=group, envelope=envelope_for(group, "bob", stay)
        )),
        return_exceptions=True,
    )  # fmt: skip
    assert isinstance(outcomes[0], NotFound)
    assert not isinstance(outcomes[1], BaseException)
    assert outcomes[1].seq == 2


async def test_two_instances_on_one_database_keep_every_conversation_gap_free(
    chat, conversations, envelope_for, db_url
) -> None:
    """Two chat instances (each its own pool, group commit and SQLite write gate) storing batches
    into the same conversations at once: their conversation locks never deadlock, and each
    conversation's seqs are still 1..n, each once."""
    other_db = Database(db_url)
    other = MessageService(other_db, chat.directory, chat.notifier)
    try:
        reqs = _requests([(conversations[n % 3], f"i{n}") for n in range(120)], conversations, envelope_for)
        services = [chat.messages, other]
        results = await asyncio.gather(*(services[n % 2].post(r) for n, r in enumerate(reqs)))
    finally:
        await other.commits.close()
        await other_db.close()
    for cid in conversations:
        assert sorted(r.seq for r in results if r.conversation_id == cid) == list(range(1, 41))
