"""Conversations: one direct conversation per pair, groups and their admins, read positions."""

from __future__ import annotations

import asyncio

import pytest

from chainchat_protocol.chat import (
    AddMembersRequest,
    ConversationListRequest,
    ConversationRequest,
    CreateConversationRequest,
    MarkReadRequest,
    MessageAccessRequest,
    PostMessageRequest,
    RemoveMemberRequest,
)
from chainchat_protocol.errors import Conflict, Forbidden, NotFound, ValidationFailed


async def _direct(chat, a: str, b: str):
    return await chat.conversations.create(CreateConversationRequest(user_id=a, member_ids=[b]))


async def _group(chat, creator: str, others: list[str], title: str = "team"):
    return await chat.conversations.create(
        CreateConversationRequest(user_id=creator, member_ids=others, title=title)
    )


@pytest.fixture
def users(chat) -> list[str]:
    for name in ("alice", "bob", "carol", "dave"):
        chat.directory.add_user(name)
    return ["alice", "bob", "carol", "dave"]


async def test_direct_conversation_is_returned_not_duplicated(chat, users) -> None:
    first = await _direct(chat, "alice", "bob")
    again = await _direct(chat, "alice", "bob")
    from_peer = await _direct(chat, "bob", "alice")
    assert first.created
    assert not again.created
    assert not from_peer.created
    assert first.kind == "direct"
    assert sorted(first.members) == ["alice", "bob"]
    assert first.admins == []
    assert again.conversation_id == first.conversation_id == from_peer.conversation_id
    created = chat.notifier.of_type("conversation")
    assert len(created) == 1
    assert created[0][0] == {"alice", "bob"}


async def test_racing_direct_creations_make_one_conversation(chat, users) -> None:
    results = await asyncio.gather(
        *(_direct(chat, *pair) for pair in [("alice", "bob"), ("bob", "alice")] * 4)
    )
    assert len({r.conversation_id for r in results}) == 1
    assert sum(r.created for r in results) == 1


async def test_members_must_be_active_users(chat, users) -> None:
    with pytest.raises(ValidationFailed) as err:
        await _group(chat, "alice", ["bob", "mallory"])
    assert err.value.code == "unknown_users"
    assert "mallory" in err.value.message
    with pytest.raises(ValidationFailed) as err:
        await chat.conversations.create(CreateConversationRequest(user_id="alice", member_ids=["alice"]))
    assert err.value.code == "members_required"
    with pytest.raises(ValidationFailed) as err:
        await chat.conversations.create(
            CreateConversationRequest(user_id="alice", member_ids=["bob", "carol"], kind="direct")
        )
    assert err.value.code == "direct_conversation"
    assert (await chat.conversations.list_for(ConversationListRequest(user_id="alice"))).conversations == []


async def test_group_admins_manage_members(chat, users) -> None:
    group = await _group(chat, "alice", ["bob"])
    assert group.kind == "group"
    assert group.admins == ["alice"]
    assert group.title == "team"
    cid = group.conversation_id
    with pytest.raises(Forbidden) as err:
        await chat.conversations.add_members(
            AddMembersRequest(user_id="bob", conversation_id=cid, user_ids=["carol"])
        )
    assert err.value.code == "not_group_admin"
    with pytest.raises(NotFound) as missing:
        await chat.conversations.add_members(
            AddMembersRequest(user_id="carol", conversation_id=cid, user_ids=["carol"])
        )
    assert missing.value.code == "conversation_not_found"
    view = await chat.conversations.add_members(
        AddMembersRequest(user_id="alice", conversation_id=cid, user_ids=["carol", "dave", "bob"])
    )
    assert sorted(view.members) == ["alice", "bob", "carol", "dave"]
    changed = chat.notifier.of_type("conversation")[-1]
    assert changed[1]["event"] == "members_changed"
    assert changed[0] == {"alice", "bob", "carol", "dave"}
    with pytest.raises(Forbidden):
        await chat.conversations.remove_member(
            RemoveMemberRequest(user_id="bob", conversation_id=cid, member_id="dave")
        )
    await chat.conversations.remove_member(
        RemoveMemberRequest(user_id="alice", conversation_id=cid, member_id="dave")
    )
    removed = [f for users_, f in chat.notifier.of_type("conversation") if f["event"] == "removed"]
    assert removed == [{"type": "conversation", "event": "removed", "conversation_id": cid}]
    with pytest.raises(NotFound):
        await chat.conversations.get(ConversationRequest(user_id="dave", conversation_id=cid))


async def test_leaving_and_the_last_admin(chat, users) -> None:
    cid = (await _group(chat, "alice", ["bob", "carol"])).conversation_id
    await chat.conversations.remove_member(
        RemoveMemberRequest(user_id="alice", conversation_id=cid, member_id="alice")
    )
    view = await chat.conversations.get(ConversationRequest(user_id="bob", conversation_id=cid))
    assert sorted(view.members) == ["bob", "carol"]
    assert len(view.admins) == 1
    with pytest.raises(NotFound) as err:
        await chat.conversations.remove_member(
            RemoveMemberRequest(user_id="bob", conversation_id=cid, member_id="zed")
        )
    assert err.value.code == "member_not_found"


async def test_direct_members_are_fixed(chat, users) -> None:
    cid = (await _direct(chat, "alice", "bob")).conversation_id
    with pytest.raises(Conflict) as err:
        await chat.conversations.add_members(
            AddMembersRequest(user_id="alice", conversation_id=cid, user_ids=["carol"])
        )
    assert err.value.code == "direct_conversation"
    with pytest.raises(Conflict):
        await chat.conversations.remove_member(
            RemoveMemberRequest(user_id="alice", conversation_id=cid, member_id="alice")
        )


async def test_read_positions_are_monotonic_and_drive_unread_counts(chat, users, envelope_for) -> None:
    cid = (await _direct(chat, "alice", "bob")).conversation_id
    for _ in range(3):
        env = envelope_for(cid, "alice", ["alice", "bob"])
        await chat.messages.post(PostMessageRequest(user_id="alice", conversation_id=cid, envelope=env))
    bob = (await chat.conversations.list_for(ConversationListRequest(user_id="bob"))).conversations[0]
    alice = (await chat.conversations.list_for(ConversationListRequest(user_id="alice"))).conversations[0]
    assert (bob.last_seq, bob.unread_count, alice.unread_count) == (3, 3, 0)
    assert bob.last_message_at is not None
    pos = await chat.conversations.mark_read(MarkReadRequest(user_id="bob", conversation_id=cid, seq=2))
    assert (pos.seq, pos.unread_count) == (2, 1)
    receipts = chat.notifier.of_type("receipt")
    assert receipts == [
        ({"alice", "bob"}, {"type": "receipt", "conversation_id": cid, "user_id": "bob", "seq": 2})
    ]
    back = await chat.conversations.mark_read(MarkReadRequest(user_id="bob", conversation_id=cid, seq=1))
    assert back.seq == 2
    assert len(chat.notifier.of_type("receipt")) == 1
    with pytest.raises(ValidationFailed) as err:
        await chat.conversations.mark_read(MarkReadRequest(user_id="bob", conversation_id=cid, seq=4))
    assert err.value.code == "seq_out_of_range"
    with pytest.raises(NotFound):
        await chat.conversations.mark_read(MarkReadRequest(user_id="carol", conversation_id=cid, seq=1))


async def test_typing_goes_to_the_others_only(chat, users) -> None:
    cid = (await _group(chat, "alice", ["bob", "carol"])).conversation_id
    await chat.conversations.typing(ConversationRequest(user_id="bob", conversation_id=cid))
    assert chat.notifier.of_type("typing") == [
        ({"alice", "carol"}, {"type": "typing", "conversation_id": cid, "user_id": "bob"})
    ]
    with pytest.raises(NotFound):
        await chat.conversations.typing(ConversationRequest(user_id="dave", conversation_id=cid))


async def test_access_checks_for_files_and_proofs(chat, users, envelope_for) -> None:
    cid = (await _group(chat, "alice", ["bob"])).conversation_id
    env = envelope_for(cid, "alice", ["alice", "bob"])
    sent = await chat.messages.post(PostMessageRequest(user_id="alice", conversation_id=cid, envelope=env))
    member = await chat.conversations.membership(ConversationRequest(user_id="bob", conversation_id=cid))
    assert (member.user_id, member.role) == ("bob", "member")
    access = await chat.conversations.message_access(
        MessageAccessRequest(user_id="bob", message_id=sent.message_id)
    )
    assert access.conversation_id == cid
    for user, message_id in [("carol", sent.message_id), ("bob", "no-such-message")]:
        with pytest.raises(NotFound):
            await chat.conversations.message_access(MessageAccessRequest(user_id=user, message_id=message_id))
    with pytest.raises(NotFound):
        await chat.conversations.membership(ConversationRequest(user_id="carol", conversation_id=cid))
    # a member added later cannot see (or prove) what was sealed before they joined
    await chat.conversations.add_members(
        AddMembersRequest(user_id="alice", conversation_id=cid, user_ids=["carol"])
    )
    with pytest.raises(NotFound):
        await chat.conversations.message_access(
            MessageAccessRequest(user_id="carol", message_id=sent.message_id)
        )


async def test_conversation_list_is_newest_first_with_members(chat, users, envelope_for) -> None:
    first = (await _group(chat, "alice", ["bob"], title="first")).conversation_id
    second = (await _group(chat, "alice", ["carol"], title="second")).conversation_id
    env = envelope_for(first, "alice", ["alice", "bob"])
    await chat.messages.post(PostMessageRequest(user_id="alice", conversation_id=first, envelope=env))
    listed = (await chat.conversations.list_for(ConversationListRequest(user_id="alice"))).conversations
    assert [c.conversation_id for c in listed] == [first, second]
    assert [c.title for c in listed] == ["first", "second"]
    assert listed[1].members == ["alice", "carol"]


async def test_conversation_list_pages_by_cursor_and_fits_one_reply(chat) -> None:
    """A user in many large groups: pages stay within MAX_REPLY_BYTES, cursors walk every group
    once, most recently created first; a forged cursor is 422 invalid_cursor."""
    from chainchat_protocol.chat import ConversationList
    from chainchat_protocol.rpc import MAX_REPLY_BYTES

    chat.conversations.create_limit = (1000, 60)  # one creator makes them all here
    others = [f"member-{i:03d}-{'x' * 50}" for i in range(255)]  # 255 ids of 61 characters
    for user in ["alice", *others]:
        chat.directory.add_user(user)
    created = []
    for n in range(34):  # ~16 KiB each: together more than MAX_REPLY_BYTES
        req = CreateConversationRequest(user_id="alice", member_ids=others, title=f"group {n}")
        created.append((await chat.conversations.create(req)).conversation_id)
    listed: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await chat.conversations.list_for(ConversationListRequest(user_id="alice", cursor=cursor))
        assert len(ConversationList.model_validate(page).model_dump_json()) <= MAX_REPLY_BYTES
        listed += [c.conversation_id for c in page.conversations]
        pages += 1
        if not page.has_more:
            assert page.next_cursor is None
            break
        cursor = page.next_cursor
    assert pages > 1
    assert listed == list(reversed(created))
    two = await chat.conversations.list_for(ConversationListRequest(user_id="alice", limit=2))
    assert [c.conversation_id for c in two.conversations] == listed[:2]
    assert two.has_more
    with pytest.raises(ValidationFailed) as bad:
        await chat.conversations.list_for(ConversationListRequest(user_id="alice", cursor="bm90LWEtY3Vyc29y"))
    assert bad.value.code == "invalid_cursor"


async def test_conversation_creation_is_rate_limited_per_creator(chat) -> None:
    """Only new conversations count; the existing direct one is still returned; others may create."""
    from chainchat_protocol.errors import RateLimited

    chat.conversations.create_limit = (3, 60)
    for user in ("alice", "bob", "carol", "dave", "erin"):
        chat.directory.add_user(user)
    for title in ("one", "two"):
        await chat.conversations.create(
            CreateConversationRequest(user_id="alice", member_ids=["bob"], title=title)
        )
    direct = await chat.conversations.create(CreateConversationRequest(user_id="alice", member_ids=["carol"]))
    with pytest.raises(RateLimited) as limited:
        await chat.conversations.create(CreateConversationRequest(user_id="alice", member_ids=["dave"]))
    assert 1 <= limited.value.retry_after <= 60
    assert limited.value.headers["Retry-After"] == str(limited.value.retry_after)
    again = await chat.conversations.create(CreateConversationRequest(user_id="alice", member_ids=["carol"]))
    assert (again.conversation_id, again.created) == (direct.conversation_id, False)
    await chat.conversations.create(CreateConversationRequest(user_id="erin", member_ids=["dave"]))
