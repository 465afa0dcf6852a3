"""The key directory through the gateway, and the auth subjects other services call over NATS."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chainchat_protocol import auth as p
from chainchat_protocol.b64 import b64e
from chainchat_protocol.keys import key_id
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus

pytestmark = pytest.mark.integration

# `accounts`, `admin`, `member` come from tests/integration/conftest.py


def _code(resp: Any) -> str:
    code: str = resp.json()["error"]["code"]
    return code


def new_device() -> dict[str, Any]:
    """A device's public keys as the API takes them."""
    x = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ed = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "x25519_public": b64e(x),
        "ed25519_public": b64e(ed),
        "suite_support": ["hpke-x25519-aes256gcm"],
        "_key_id": key_id(x, ed),
    }


def _body(device: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in device.items() if not k.startswith("_")}


async def _nats(running_stack: Any, rpc: Any, req: Any) -> Any:
    bus = Bus(running_stack.nats.client_url(), "auth-keys-test")
    await bus.connect()
    try:
        return await bus.request(rpc, req)
    finally:
        await bus.close()


def test_publish_is_idempotent_and_get_lists_devices_with_proofs(accounts: Any, member: Any) -> None:
    phone, laptop = new_device(), new_device()
    first = accounts.http.put("/keys/me", json=_body(phone), headers=member.headers)
    assert first.status_code == 200
    assert first.json()["key_id"] == phone["_key_id"]
    assert (
        accounts.http.put("/keys/me", json=_body(phone), headers=member.headers).json()["key_id"]
        == phone["_key_id"]
    )
    # a second device needs the password again (SPEC §11); the login's reauth token is that
    refused = accounts.http.put("/keys/me", json=_body(laptop), headers=member.headers)
    assert (refused.status_code, _code(refused)) == (403, "reauth_required")
    recent = {**member.headers, "X-Reauth-Token": member.reauth_token}
    assert accounts.http.put("/keys/me", json=_body(laptop), headers=recent).status_code == 200

    other = accounts.create_active("peer")
    resp = accounts.http.get(f"/keys/{member.user_id}", headers=other.headers)
    assert resp.status_code == 200
    body = resp.json()
    assert body["user_id"] == member.user_id
    assert [k["key_id"] for k in body["keys"]] == [phone["_key_id"], laptop["_key_id"]]
    assert body["keys"][0]["x25519_public"] == phone["x25519_public"]
    for kid in (phone["_key_id"], laptop["_key_id"]):
        proof = body["proofs"][kid]
        assert proof["status"] in ("pending", "anchored")
        assert (proof["entry"]["kind"], proof["entry"]["id"]) == ("key", kid)

    token_only = accounts.http.delete(f"/keys/me/{phone['_key_id']}", headers=member.headers)
    assert (token_only.status_code, _code(token_only)) == (403, "reauth_required")
    gone = accounts.http.delete(f"/keys/me/{phone['_key_id']}", headers=recent)
    assert gone.status_code == 204
    listed = accounts.http.get(f"/keys/{member.user_id}", headers=other.headers).json()
    assert [k["key_id"] for k in listed["keys"]] == [laptop["_key_id"]]
    # the revoked key stays readable, apart, to verify history signed with it; its revocation is logged
    assert [k["key_id"] for k in listed["revoked_keys"]] == [phone["_key_id"]]
    revocation = listed["proofs"][f"{phone['_key_id']}:revoked"]
    assert (revocation["entry"]["kind"], revocation["status"] in ("pending", "anchored")) == ("key", True)
    again = accounts.http.delete(f"/keys/me/{phone['_key_id']}", headers=recent)
    assert (again.status_code, _code(again)) == (404, "key_not_found")
    revoked = accounts.http.put("/keys/me", json=_body(phone), headers=recent)
    assert (revoked.status_code, _code(revoked)) == (409, "key_revoked")


def test_someone_elses_key_cannot_be_claimed_or_deleted(accounts: Any, member: Any) -> None:
    device = new_device()
    accounts.http.put("/keys/me", json=_body(device), headers=member.headers)
    thief = accounts.create_active("thief")
    claim = accounts.http.put("/keys/me", json=_body(device), headers=thief.headers)
    assert (claim.status_code, _code(claim)) == (409, "key_in_use")
    delete = accounts.http.delete(
        f"/keys/me/{device['_key_id']}", headers={**thief.headers, "X-Reauth-Token": thief.reauth_token}
    )
    assert delete.status_code == 404


@pytest.mark.parametrize(
    "patch",
    [
        {"x25519_public": "too-short"},
        {"x25519_public": "A" * 42 + "="},
        {"ed25519_public": "+" * 43},
        {"ed25519_public": "A" * 42 + "B"},  # non-canonical trailing bits
        {"suite_support": []},
        {"suite_support": ["rot13"]},
        {"extra": 1},
    ],
)
def test_bad_keys_are_422(accounts: Any, member: Any, patch: dict[str, Any]) -> None:
    body = {**_body(new_device()), **patch}
    resp = accounts.http.put("/keys/me", json=body, headers=member.headers)
    assert (resp.status_code, _code(resp)) == (422, "validation_error")


def test_unknown_user_keys_are_404(accounts: Any, member: Any) -> None:
    resp = accounts.http.get("/keys/00000000-0000-0000-0000-000000000000", headers=member.headers)
    assert (resp.status_code, _code(resp)) == (404, "user_not_found")
    assert accounts.http.get(f"/keys/{member.user_id}").status_code == 401
    recent = {**member.headers, "X-Reauth-Token": member.reauth_token}
    assert accounts.http.delete("/keys/me/not-hex", headers=recent).status_code == 422


def test_nats_devices_users_and_key_changed_event(accounts: Any, member: Any, running_stack: Any) -> None:
    device = new_device()

    async def scenario() -> tuple[p.DevicesReply, p.UsersGetReply, list[p.KeyChanged]]:
        bus = Bus(running_stack.nats.client_url(), "auth-keys-test")
        await bus.connect()
        seen: list[p.KeyChanged] = []

        async def on_event(msg: Any) -> None:
            seen.append(p.KeyChanged.model_validate_json(msg.data))

        await bus.nc.subscribe(Subject.KEY_CHANGED, cb=on_event)
        await bus.nc.flush()
        await asyncio.to_thread(accounts.http.put, "/keys/me", json=_body(device), headers=member.headers)
        ghost = "00000000-0000-0000-0000-000000000000"
        devices = await bus.request(p.AUTH_KEYS_DEVICES, p.DevicesRequest(user_ids=[member.user_id, ghost]))
        users = await bus.request(p.AUTH_USERS_GET, p.UsersGetRequest(user_ids=[member.user_id, ghost]))
        for _ in range(50):
            if any(e.key_id == device["_key_id"] for e in seen):
                break
            await asyncio.sleep(0.1)
        await bus.close()
        return devices, users, seen

    devices, users, seen = asyncio.run(scenario())
    assert device["_key_id"] in [k.key_id for k in devices.devices[member.user_id]]
    assert devices.devices["00000000-0000-0000-0000-000000000000"] == []
    assert [(u.id, u.status, u.role) for u in users.users] == [(member.user_id, "active", "member")]
    published = (member.user_id, device["_key_id"], False)
    added = [e for e in seen if (e.user_id, e.key_id, e.revoked) == published]
    assert len(added) == 1
    assert added[0].at is not None  # what the owner's devices are shown in ``device_added``


def test_nats_rejects_malformed_requests(running_stack: Any) -> None:
    from chainchat_protocol.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        asyncio.run(_nats(running_stack, p.AUTH_KEYS_DEVICES, p.DevicesRequest.model_construct(user_ids=[])))
