"""Key directory and user lookups at the service level."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from chainchat_auth import admin, directory
from chainchat_auth.context import AuthContext
from chainchat_auth.models import MailMessage
from chainchat_protocol.auth import (
    AdminActionRequest,
    KeyChanged,
    PublishKeyRequest,
    RevokeKeyRequest,
    UserSearchRequest,
)
from chainchat_protocol.b64 import b64e
from chainchat_protocol.errors import Conflict, Forbidden, NotFound
from chainchat_protocol.keys import key_id
from chainchat_protocol.log_entry import digest_object
from chainchat_protocol.subjects import Subject
from chainchat_service.outbox import OutboxMessage


def _device(
    seed: int, user_id: str, *, reauthenticated: bool = False, label: str | None = None
) -> PublishKeyRequest:
    x, ed = bytes([seed]) * 32, bytes([seed + 1]) * 32
    return PublishKeyRequest(
        user_id=user_id,
        x25519_public=b64e(x),
        ed25519_public=b64e(ed),
        suite_support=["hpke-x25519-aes256gcm"],
        reauthenticated=reauthenticated,
        label=label,
    )


async def test_publish_is_idempotent_and_logged_once(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    request = _device(1, user.id)
    first = await directory.publish_key(ctx, request)
    second = await directory.publish_key(ctx, request)
    assert first.key_id == second.key_id == key_id(bytes([1]) * 32, bytes([2]) * 32)
    assert (first.created, second.created) == (True, False)
    keys = await directory.user_keys(ctx, user.id)
    entry = keys.entries[first.key_id]
    assert entry.digest == digest_object(
        {
            "user_id": user.id,
            "key_id": first.key_id,
            "x25519_public": request.x25519_public,
            "ed25519_public": request.ed25519_public,
        }
    )
    async with ctx.db.session() as session:
        rows = (await session.exec(select(OutboxMessage))).all()
    assert [r.msg_id for r in rows].count(f"key:{first.key_id}") == 1
    assert sum(r.subject == "auth.key.changed.v1" for r in rows) == 1


async def test_revoke_and_devices(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    one = await directory.publish_key(ctx, _device(1, user.id, label="phone"))
    two = await directory.publish_key(ctx, _device(5, user.id, reauthenticated=True))
    await directory.revoke_key(ctx, RevokeKeyRequest(user_id=user.id, key_id=one.key_id))
    devices = await directory.devices(ctx, [user.id, "ghost"])
    assert [k.key_id for k in devices.devices[user.id]] == [two.key_id]
    assert devices.devices["ghost"] == []
    with pytest.raises(Conflict):
        await directory.publish_key(ctx, _device(1, user.id, reauthenticated=True))
    with pytest.raises(NotFound):
        await directory.revoke_key(ctx, RevokeKeyRequest(user_id=user.id, key_id=one.key_id))
    mine = (await directory.own_devices(ctx, user.id)).devices
    assert [(d.key_id, d.label, d.revoked_at is not None) for d in mine] == [
        (one.key_id, "phone", True),
        (two.key_id, None, False),
    ]
    keys = await directory.user_keys(ctx, user.id)
    assert [k.key_id for k in keys.keys] == [two.key_id]
    assert [k.key_id for k in keys.revoked_keys] == [one.key_id]
    revocation = keys.entries[f"{one.key_id}:revoked"]
    assert revocation.kind == "key"
    assert revocation.digest == digest_object(
        {"user_id": user.id, "key_id": one.key_id, "revoked_at": revocation.at}
    )
    async with ctx.db.session() as session:
        logged = [r.msg_id for r in (await session.exec(select(OutboxMessage))).all()]
    assert f"key:{one.key_id}:revoked" in logged


async def test_a_second_device_needs_reauth_and_is_announced(ctx: AuthContext, h: Any) -> None:
    user = await h.make_user(ctx, "a@example.com")
    first = await directory.publish_key(ctx, _device(1, user.id))  # the first needs no reauth
    with pytest.raises(Forbidden) as err:
        await directory.publish_key(ctx, _device(5, user.id, label="attacker"))
    assert err.value.code == "reauth_required"
    again = await directory.publish_key(ctx, _device(1, user.id))  # re-publishing is not adding
    assert (again.key_id, again.created) == (first.key_id, False)
    second = await directory.publish_key(ctx, _device(5, user.id, reauthenticated=True, label="laptop"))
    async with ctx.db.session() as session:
        mails = (await session.exec(select(MailMessage).where(MailMessage.to_addr == user.email))).all()
        events = [
            r for r in (await session.exec(select(OutboxMessage))).all() if r.subject == Subject.KEY_CHANGED
        ]
    notices = [m for m in mails if m.subject == "A new device was added to your ChainChat account"]
    assert len(notices) == 1  # for the second device only
    assert second.key_id in notices[0].text_body
    assert "laptop" in notices[0].text_body
    assert f"chainchat keys revoke {second.key_id}" in notices[0].text_body
    announced = [KeyChanged.model_validate_json(e.payload) for e in events]
    assert [(e.key_id, e.label) for e in announced] == [(first.key_id, None), (second.key_id, "laptop")]
    assert all(e.at for e in announced)


async def test_keys_of_others_and_unapproved_users(ctx: AuthContext, h: Any) -> None:
    boss = await h.make_user(ctx, "a@example.com")
    other = await h.make_user(ctx, "o@example.com")
    pending = await h.make_user(ctx, "p@example.com")
    await admin.act(ctx, AdminActionRequest(actor_id=boss.id, user_id=other.id, action="approve"))
    await directory.publish_key(ctx, _device(1, boss.id))
    with pytest.raises(Conflict) as err:
        await directory.publish_key(ctx, _device(1, other.id))
    assert err.value.code == "key_in_use"
    with pytest.raises(Forbidden):
        await directory.publish_key(ctx, _device(9, pending.id))
    with pytest.raises(NotFound):
        await directory.user_keys(ctx, pending.id)


async def test_search_is_prefix_case_insensitive_and_escapes_wildcards(ctx: AuthContext, h: Any) -> None:
    await h.make_user(ctx, "alice@example.com", name="Alice Liddell")
    await h.make_user(ctx, "bob@example.com", name="Bob_%")  # pending: never listed
    hits = await directory.search(ctx, UserSearchRequest(q="ALI"))
    assert [u.display_name for u in hits.users] == ["Alice Liddell"]
    assert (await directory.search(ctx, UserSearchRequest(q="alice@"))).users
    for q in ("%", "_", "\\", "bob"):
        assert (await directory.search(ctx, UserSearchRequest(q=q))).users == []
    found = await directory.users_get(ctx, ["nope"])
    assert found.users == []
