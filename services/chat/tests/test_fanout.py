"""Key changes and anchored heads reach exactly the users concerned."""

from __future__ import annotations

from chainchat_protocol.chat import AddMembersRequest, CreateConversationRequest, PostMessageRequest


async def test_key_change_reaches_contacts_only(chat) -> None:
    for user in ("alice", "bob", "carol", "dave"):
        chat.directory.add_user(user)
    await chat.conversations.create(CreateConversationRequest(user_id="alice", member_ids=["bob"]))
    await chat.conversations.create(
        CreateConversationRequest(user_id="carol", member_ids=["alice", "bob"], title="t")
    )
    await chat.conversations.create(CreateConversationRequest(user_id="bob", member_ids=["dave"]))
    assert await chat.fanout.key_changed("alice") == 3
    users, frame = chat.notifier.of_type("key_changed")[0]
    assert users == {"alice", "bob", "carol"}
    assert frame == {"type": "key_changed", "user_id": "alice"}


async def test_anchored_ids_go_to_the_members_who_may_see_them(chat, envelope_for) -> None:
    for user in ("alice", "bob", "carol"):
        chat.directory.add_user(user)
    cid = (
        await chat.conversations.create(
            CreateConversationRequest(user_id="alice", member_ids=["bob"], title="g")
        )
    ).conversation_id
    env = envelope_for(cid, "alice", ["alice", "bob"])
    early = await chat.messages.post(PostMessageRequest(user_id="alice", conversation_id=cid, envelope=env))
    await chat.conversations.add_members(
        AddMembersRequest(user_id="alice", conversation_id=cid, user_ids=["carol"])
    )
    env = envelope_for(cid, "alice", ["alice", "bob", "carol"])
    late = await chat.messages.post(PostMessageRequest(user_id="alice", conversation_id=cid, envelope=env))
    told = await chat.fanout.anchored([early.message_id, late.message_id, "key-or-file-id"], head_index=4)
    assert told == 3
    frames = {next(iter(users)): frame for users, frame in chat.notifier.of_type("anchored")}
    both = sorted([early.message_id, late.message_id])
    assert frames["alice"] == {"type": "anchored", "message_ids": both, "head_index": 4}
    assert frames["bob"]["message_ids"] == both
    assert frames["carol"]["message_ids"] == [late.message_id]
