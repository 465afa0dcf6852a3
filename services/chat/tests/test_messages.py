"""Messages: envelope checks, gap-free seq, idempotent sends, history, tombstones, outbox rows."""

from __future__ import annotations

import json

import pytest
from sqlmodel import col, func, select

from chainchat_chat.models import Message, OutboxMessage
from chainchat_protocol.chat import (
    AddMembersRequest,
    CreateConversationRequest,
    DeleteMessageRequest,
    HistoryRequest,
    PostMessageRequest,
    RemoveMemberRequest,
)
from chainchat_protocol.envelope import envelope_digest
from chainchat_protocol.errors import Forbidden, NotFound, ValidationFailed
from chainchat_protocol.log_entry import LogEntry


@pytest.fixture
async def group(chat) -> str:
    chat.directory.add_user("alice", devices=2)
    chat.directory.add_user("bob")
    chat.directory.add_user("carol")
    chat.directory.add_user("eve")
    created = await chat.conversations.create(
        CreateConversationRequest(user_id="alice", member_ids=["bob", "carol"], title="g")
    )
    return created.conversation_id


MEMBERS = ["alice", "bob", "carol"]


async def _post(chat, envelope_for, cid: str, sender: str = "alice", **kw):
    env = envelope_for(cid, sender, MEMBERS)
    return await chat.messages.post(
        PostMessageRequest(user_id=sender, conversation_id=cid, envelope=env, **kw)
    )


async def _count(db, model, *where) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(model).where(*where))).one()


async def _outbox(db) -> list[OutboxMessage]:
    async with db.session() as session:
        return list((await session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id)))).all())


async def test_send_assigns_seq_digest_log_entry_and_delivery(chat, group, envelope_for) -> None:
    env = envelope_for(group, "alice", MEMBERS)
    first = await chat.messages.post(PostMessageRequest(user_id="alice", conversation_id=group, envelope=env))
    second = await _post(chat, envelope_for, group, sender="bob")
    assert (first.seq, second.seq) == (1, 2)
    assert first.digest == envelope_digest(env)
    assert first.created_at.endswith("Z")
    entries = [LogEntry.model_validate_json(row.payload) for row in await _outbox(chat.db)]
    assert [(e.kind, e.id, e.digest) for e in entries][0] == ("message", first.message_id, first.digest)
    assert entries[0].at == first.created_at
    users, frame = chat.notifier.of_type("message")[0]
    assert users == set(MEMBERS)
    assert frame["conversation_id"] == group
    assert frame["message"] == {
        **env.model_dump(mode="json"), "message_id": first.message_id, "seq": 1,
        "created_at": first.created_at, "deleted": False,
    }  # fmt: skip


async def test_retried_send_with_client_id_is_one_message(chat, group, envelope_for) -> None:
    first = await _post(chat, envelope_for, group, client_id="c-1")
    retry = await _post(chat, envelope_for, group, client_id="c-1")
    other = await _post(chat, envelope_for, group, client_id="c-2")
    assert (retry.message_id, retry.seq) == (first.message_id, first.seq)
    assert other.seq == 2
    assert await _count(chat.db, Message) == 2
    assert len(await _outbox(chat.db)) == 2
    assert len(chat.notifier.of_type("message")) == 2


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"conversation_id": "elsewhere"}, "conversation_mismatch"),
        ({"sender_id": "bob"}, "sender_mismatch"),
        ({"sender_key_id": "0" * 32}, "unknown_sender_key"),
    ],
)
async def test_header_must_match_path_caller_and_keys(chat, group, envelope_for, overrides, code) -> None:
    env = envelope_for(group, "alice", MEMBERS, **overrides)
    with pytest.raises(ValidationFailed) as err:
        await chat.messages.post(PostMessageRequest(user_id="alice", conversation_id=group, envelope=env))
    assert err.value.code == code
    assert await _count(chat.db, Message) == 0
    assert await _outbox(chat.db) == []


async def test_every_member_device_must_be_a_recipient(chat, group, envelope_for) -> None:
    full = envelope_for(group, "alice", MEMBERS)
    # drop one of alice's own two devices: her other device could not read her history
    partial = full.model_copy(update={"recipients": full.recipients[1:]})
    stranger = envelope_for(group, "alice", [*MEMBERS, "eve"])
    for env in (partial, stranger):
        with pytest.raises(ValidationFailed) as err:
            await chat.messages.post(PostMessageRequest(user_id="alice", conversation_id=group, envelope=env))
        assert err.value.code == "recipients_mismatch"
    assert await _count(chat.db, Message) == 0


async def test_stale_device_cache_is_rechecked_before_rejecting(chat, group, envelope_for) -> None:
    # the cache still lists a device bob revoked; the client sealed to his current one only
    chat.directory.stale = {u: set(k) for u, k in chat.directory.keys.items()}
    chat.directory.stale["bob"].add("f" * 32)
    sent = await _post(chat, envelope_for, group)
    assert sent.seq == 1
    assert chat.directory.fresh_calls == 1


async def test_non_members_cannot_post(chat, group, envelope_for) -> None:
    env = envelope_for(group, "eve", MEMBERS)
    with pytest.raises(NotFound) as err:
        await chat.messages.post(PostMessageRequest(user_id="eve", conversation_id=group, envelope=env))
    assert err.value.code == "conversation_not_found"


async def test_history_pages_and_catch_up(chat, group, envelope_for) -> None:
    sent = [await _post(chat, envelope_for, group) for _ in range(7)]

    async def seqs(**kw) -> list[int]:
        page = await chat.messages.history(HistoryRequest(user_id="bob", conversation_id=group, **kw))
        return [m.seq for m in page.messages]

    assert await seqs() == [1, 2, 3, 4, 5, 6, 7]
    assert await seqs(limit=3) == [5, 6, 7]
    assert await seqs(after_seq=2, limit=3) == [3, 4, 5]
    assert await seqs(before_seq=5, limit=2) == [3, 4]
    assert await seqs(after_seq=2, before_seq=5) == [3, 4]
    assert await seqs(after_seq=7) == []
    page = await chat.messages.history(HistoryRequest(user_id="bob", conversation_id=group, limit=1))
    assert page.messages[0].message_id == sent[-1].message_id
    assert page.messages[0].ciphertext
    with pytest.raises(NotFound):
        await chat.messages.history(HistoryRequest(user_id="eve", conversation_id=group))


async def test_new_members_see_only_what_follows_and_removed_stop_at_once(chat, group, envelope_for) -> None:
    await _post(chat, envelope_for, group)
    await chat.conversations.add_members(
        AddMembersRequest(user_id="alice", conversation_id=group, user_ids=["eve"])
    )
    members = [*MEMBERS, "eve"]
    env = envelope_for(group, "alice", members)
    later = await chat.messages.post(PostMessageRequest(user_id="alice", conversation_id=group, envelope=env))
    page = await chat.messages.history(HistoryRequest(user_id="eve", conversation_id=group))
    assert [m.seq for m in page.messages] == [later.seq]
    assert chat.notifier.of_type("message")[-1][0] == set(members)
    await chat.conversations.remove_member(
        RemoveMemberRequest(user_id="alice", conversation_id=group, member_id="eve")
    )
    # a client that has not noticed still seals to eve: rejected, and eve gets nothing
    with pytest.raises(ValidationFailed):
        await chat.messages.post(PostMessageRequest(
            user_id="alice", conversation_id=group, envelope=envelope_for(group, "alice", members)
        ))  # fmt: skip
    await _post(chat, envelope_for, group)
    assert chat.notifier.of_type("message")[-1][0] == set(MEMBERS)


async def test_delete_leaves_a_tombstone_and_logs_it(chat, group, envelope_for) -> None:
    sent = await _post(chat, envelope_for, group, file_ids=["file-1", "file-2"])
    with pytest.raises(Forbidden) as err:
        await chat.messages.delete(DeleteMessageRequest(user_id="bob", message_id=sent.message_id))
    assert err.value.code == "not_message_sender"
    with pytest.raises(NotFound):
        await chat.messages.delete(DeleteMessageRequest(user_id="eve", message_id=sent.message_id))
    removed = await chat.messages.delete(DeleteMessageRequest(user_id="alice", message_id=sent.message_id))
    again = await chat.messages.delete(DeleteMessageRequest(user_id="alice", message_id=sent.message_id))
    assert (removed.seq, again.deleted_at) == (1, removed.deleted_at)
    page = await chat.messages.history(HistoryRequest(user_id="bob", conversation_id=group))
    tomb = page.messages[0].wire()
    assert tomb == {
        "message_id": sent.message_id, "seq": 1, "created_at": sent.created_at, "deleted": True,
        "deleted_at": removed.deleted_at, "conversation_id": group, "sender_id": "alice",
    }  # fmt: skip
    rows = await _outbox(chat.db)
    assert [r.subject for r in rows] == [
        "ledger.entry.message.v1",
        "chat.message.posted.v1",
        "ledger.entry.tombstone.v1",
        "chat.message.deleted.v1",
    ]  # fmt: skip
    tombstone = LogEntry.model_validate_json(rows[2].payload)
    assert (tombstone.id, tombstone.digest) == (sent.message_id, sent.digest)
    assert json.loads(rows[3].payload) == {
        "message_id": sent.message_id, "conversation_id": group, "file_ids": ["file-1", "file-2"]
    }  # fmt: skip
    assert rows[3].jetstream
    assert rows[3].msg_id == f"deleted:{sent.message_id}"
    deleted = chat.notifier.of_type("deleted")
    assert deleted == [
        (set(MEMBERS), {"type": "deleted", "conversation_id": group, "message_id": sent.message_id, "seq": 1})
    ]


async def test_admins_may_delete_any_message(chat, group, envelope_for) -> None:
    sent = await _post(chat, envelope_for, group)
    removed = await chat.messages.delete(
        DeleteMessageRequest(user_id="eve", message_id=sent.message_id, is_admin=True)
    )
    assert removed.message_id == sent.message_id
    with pytest.raises(NotFound):
        await chat.messages.delete(DeleteMessageRequest(user_id="eve", message_id="nope", is_admin=True))


async def test_history_of_large_envelopes_is_paged_to_fit_one_reply(chat, group, envelope_for) -> None:
    """17 envelopes of ~64 KiB exceed NATS's 1 MiB max_payload together: every page stays within
    MAX_REPLY_BYTES and says has_more, and following the pages reads them all, both ways."""
    import os

    from chainchat_protocol.b64 import b64e
    from chainchat_protocol.chat import History
    from chainchat_protocol.rpc import MAX_REPLY_BYTES

    big = b64e(os.urandom(46 * 1024))  # ~61 KiB of base64: the envelope stays under 64 KiB
    for _ in range(17):
        env = envelope_for(group, "alice", MEMBERS, ciphertext=big)
        await chat.messages.post(PostMessageRequest(user_id="alice", conversation_id=group, envelope=env))
    seen: list[int] = []
    after = 0
    pages = 0
    while True:
        pages += 1
        page = await chat.messages.history(
            HistoryRequest(user_id="bob", conversation_id=group, after_seq=after, limit=200)
        )
        assert 0 < len(History.model_validate(page).model_dump_json()) <= MAX_REPLY_BYTES
        seen += [m.seq for m in page.messages]
        if not page.has_more:
            break
        after = page.messages[-1].seq
    assert seen == list(range(1, 18))
    assert pages > 1
    back: list[int] = []
    before = None
    while True:
        page = await chat.messages.history(
            HistoryRequest(user_id="bob", conversation_id=group, before_seq=before, limit=200)
        )
        back = [m.seq for m in page.messages] + back
        if not page.has_more:
            break
        before = page.messages[0].seq
    assert back == list(range(1, 18))
    small = await chat.messages.history(HistoryRequest(user_id="bob", conversation_id=group, limit=2))
    assert [m.seq for m in small.messages] == [16, 17]
    assert small.has_more
    done = await chat.messages.history(
        HistoryRequest(user_id="bob", conversation_id=group, after_seq=15, limit=5)
    )
    assert ([m.seq for m in done.messages], done.has_more) == ([16, 17], False)
