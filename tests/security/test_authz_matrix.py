"""Authorization matrix: every route of the gateway's OpenAPI document × every kind of caller.

Callers: ``anon`` (no token), ``member`` (created the conversation, sent the message, uploaded the
file that the path names), ``other`` (an active user who is not in that conversation), ``admin``
(an admin, also not in it) and ``disabled`` (logged in, then disabled by an admin: its token is
revoked). SPEC §7: 401 without a valid token, 403 for a non-admin on admin routes, 404 for a
resource the caller may not see (the same answer as for one that does not exist: no IDOR oracle).
Routes that change the account (SPEC §11) are called with a fresh reauth token of the caller's
session (``RECENT``); ``tests/integration/test_auth_reauth.py`` shows each refuses a bare token.

The table lists the status each caller gets. A route added to the gateway without a row here
fails ``test_every_route_has_a_row``. Routes that change state get a fresh resource per caller
(a message to delete), so each caller meets the same situation.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from chainchat.crypto import DeviceKeys
from chainchat_gateway.app import create_app
from chainchat_testing.accounts import Account, Accounts
from devstack.stack import Stack
from tests.integration.chat_helpers import ChatUser, chat_user, send_body

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

ROLES = ("anon", "member", "other", "admin", "disabled")
V = "/api/v1"

# fmt: off
#  method    path                                                   anon member other admin disabled
MATRIX: list[tuple[str, str, int, int, int, int, int]] = [
    ("GET",    "/healthz",                                           200, 200, 200, 200, 200),
    ("GET",    "/readyz",                                            200, 200, 200, 200, 200),
    ("GET",    "/metrics",                                           200, 200, 200, 200, 200),
    ("GET",    V + "/readyz",                                        200, 200, 200, 200, 200),
    # public account routes: the token is not what decides
    ("POST",   V + "/auth/register",                                 201, 201, 201, 201, 201),
    ("POST",   V + "/auth/verify",                                   400, 400, 400, 400, 400),
    ("POST",   V + "/auth/verify/resend",                            202, 202, 202, 202, 202),
    ("POST",   V + "/auth/login",                                    401, 401, 401, 401, 401),
    ("POST",   V + "/auth/refresh",                                  401, 401, 401, 401, 401),
    ("GET",    V + "/auth/siwe/nonce",                               200, 200, 200, 200, 200),
    ("POST",   V + "/auth/siwe",                                     401, 401, 401, 401, 401),
    ("POST",   V + "/auth/password/reset-request",                   202, 202, 202, 202, 202),
    ("POST",   V + "/auth/password/reset",                           400, 400, 400, 400, 400),
    # the caller's own account
    ("GET",    V + "/auth/me",                                       401, 200, 200, 200, 401),
    ("POST",   V + "/auth/mfa/setup",                                401, 200, 200, 200, 401),
    ("POST",   V + "/auth/mfa/enable",                               401, 401, 401, 401, 401),
    ("POST",   V + "/auth/mfa/disable",                              401, 409, 409, 409, 401),
    ("POST",   V + "/auth/reauth",                                   401, 200, 200, 200, 401),
    ("POST",   V + "/auth/password/change",                          401, 204, 204, 204, 401),
    ("DELETE", V + "/auth/siwe",                                     401, 409, 409, 409, 401),
    # administration
    ("GET",    V + "/admin/users",                                   401, 403, 403, 200, 401),
    ("POST",   V + "/admin/users/{user_id}/{action}",                401, 403, 403, 200, 401),
    ("PUT",    V + "/admin/users/{user_id}/role",                    401, 403, 403, 200, 401),
    ("POST",   V + "/admin/signing-keys/rotate",                     401, 403, 403, 200, 401),
    ("GET",    V + "/admin/audit",                                   401, 403, 403, 200, 401),
    # directory: any active user may look up any active user
    ("GET",    V + "/users",                                         401, 200, 200, 200, 401),
    ("GET",    V + "/users/{user_id}",                               401, 200, 200, 200, 401),
    ("PUT",    V + "/keys/me",                                       401, 200, 200, 200, 401),
    ("GET",    V + "/keys/me",                                       401, 200, 200, 200, 401),
    ("GET",    V + "/keys/{user_id}",                                401, 200, 200, 200, 401),
    # conversations: only members see them, admins included
    ("GET",    V + "/conversations",                                 401, 200, 200, 200, 401),
    ("POST",   V + "/conversations",                                 401, 201, 201, 201, 401),
    ("GET",    V + "/conversations/{conversation_id}",               401, 200, 404, 404, 401),
    ("POST",   V + "/conversations/{conversation_id}/members",       401, 200, 404, 404, 401),
    ("DELETE", V + "/conversations/{conversation_id}/members/{member_id}", 401, 204, 404, 404, 401),
    ("POST",   V + "/conversations/{conversation_id}/messages",      401, 201, 404, 404, 401),
    ("GET",    V + "/conversations/{conversation_id}/messages",      401, 200, 404, 404, 401),
    ("POST",   V + "/conversations/{conversation_id}/read",          401, 200, 404, 404, 401),
    ("GET",    V + "/messages/{message_id}/proof",                   401, 200, 404, 404, 401),
    # the sender or an admin may delete a message (SPEC §7)
    ("DELETE", V + "/messages/{message_id}",                         401, 200, 404, 200, 401),
    ("POST",   V + "/files",                                         401, 201, 404, 404, 401),
    ("GET",    V + "/files/{file_id}",                               401, 200, 404, 404, 401),
    ("GET",    V + "/files/{file_id}/proof",                         401, 200, 404, 404, 401),
    ("GET",    V + "/ledger/info",                                   200, 200, 200, 200, 200),
    ("GET",    V + "/ledger/consistency",                            200, 200, 200, 200, 200),
    # only one's own device keys: another user's key id is not found
    ("DELETE", V + "/keys/me/{key_id}",                              401, 204, 404, 404, 401),
    # last: ends the session it is called with (a fresh one per caller)
    ("POST",   V + "/auth/logout",                                   401, 204, 204, 204, 401),
]
# fmt: on


def _openapi_routes() -> set[tuple[str, str]]:
    spec = create_app().openapi()
    return {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}


def test_every_route_has_a_row() -> None:
    rows = {(method, path) for method, path, *_ in MATRIX}
    routes = _openapi_routes()
    assert routes - rows == set(), "routes without an authorization row"
    assert rows - routes == set(), "rows for routes the gateway does not have"


@dataclass
class World:
    """The callers and the member's resources the paths name."""

    stack: Stack
    accounts: Accounts
    member: ChatUser
    peer: ChatUser
    other: ChatUser
    admin: ChatUser
    disabled: ChatUser
    extra: Account
    target: Account
    conversation_id: str
    message_id: str
    file_id: str
    ids: dict[str, str] = field(default_factory=dict)

    def caller(self, role: str) -> ChatUser | None:
        return None if role == "anon" else getattr(self, role)

    def headers(self, role: str) -> dict[str, str]:
        user = self.caller(role)
        return user.headers if user else {}

    def send(self, text: str = "authz") -> str:
        body = send_body(self.member, self.conversation_id, [self.member, self.peer], text)
        resp = self.accounts.http.post(
            f"/conversations/{self.conversation_id}/messages", json=body, headers=self.member.headers
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["message_id"])


def _promote(accounts: Accounts, user: ChatUser) -> None:
    resp = accounts.http.put(
        f"/admin/users/{user.id}/role", json={"role": "admin"}, headers=accounts.admin_account().headers
    )
    assert resp.status_code == 200, resp.text
    accounts.login(user.account)  # the role is in the token


@pytest.fixture(scope="module")
def world(running_stack: Stack, accounts: Accounts) -> World:
    member, peer, other = (chat_user(accounts, p) for p in ("authz-member", "authz-peer", "authz-other"))
    admin, disabled = chat_user(accounts, "authz-admin"), chat_user(accounts, "authz-disabled")
    _promote(accounts, admin)  # our own admin: the stack's shared one is not changed by this test
    extra, target = accounts.create_active("authz-extra"), accounts.create_active("authz-target")
    resp = accounts.http.post(
        "/conversations", json={"member_ids": [peer.id], "title": "authz"}, headers=member.headers
    )
    assert resp.status_code == 201, resp.text
    conversation_id = resp.json()["conversation_id"]
    upload = accounts.http.post(
        "/files",
        params={"conversation_id": conversation_id},
        content=b"ciphertext of the authz test",
        headers={**member.headers, "Content-Type": "application/octet-stream"},
    )
    assert upload.status_code == 201, upload.text
    resp = accounts.http.post(f"/admin/users/{disabled.id}/disable", headers=accounts.admin_account().headers)
    assert resp.status_code == 200, resp.text
    accounts.rejected_soon(disabled.token)
    world = World(
        running_stack, accounts, member, peer, other, admin, disabled, extra, target,
        conversation_id, "", upload.json()["file_id"],
    )  # fmt: skip
    world.message_id = world.send()
    world.ids = {
        "conversation_id": conversation_id, "message_id": world.message_id, "file_id": world.file_id,
        "member_id": member.id, "extra_id": extra.user_id, "target_id": target.user_id,
        "member_key_id": member.device.key_id, "action": "disable",
    }  # fmt: skip
    return world


def _device_body(world: World, role: str) -> dict[str, Any]:
    """The caller publishes its own device key again (a new one would change whom to seal to)."""
    user = world.caller(role)
    device = user.device if user else DeviceKeys.generate()
    return device.publish_body(["hpke-x25519-aes256gcm"])


# What each path parameter names, where it is not the world's id of the same name.
PATH_IDS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", V + "/admin/users/{user_id}/{action}"): {"user_id": "target_id"},
    ("PUT", V + "/admin/users/{user_id}/role"): {"user_id": "target_id"},
    ("GET", V + "/users/{user_id}"): {"user_id": "member_id"},
    ("GET", V + "/keys/{user_id}"): {"user_id": "member_id"},
    ("DELETE", V + "/conversations/{conversation_id}/members/{member_id}"): {"member_id": "extra_id"},
    ("DELETE", V + "/messages/{message_id}"): {"message_id": "fresh_message_id"},
    ("DELETE", V + "/keys/me/{key_id}"): {"key_id": "member_key_id"},
}


# The request each row sends (beyond method and path): a body, a query, or fresh credentials.
Request = Callable[[World, str], dict[str, Any]]
REQUESTS: dict[tuple[str, str], Request] = {
    ("POST", V + "/auth/register"): lambda w, r: {
        "json": {"email": w.accounts.unique_email("authz-reg"), "password": w.accounts.password,
                 "display_name": "Authz"}},
    ("POST", V + "/auth/verify"): lambda w, r: {"json": {"token": "A" * 43}},
    ("POST", V + "/auth/verify/resend"): lambda w, r: {"json": {"email": w.accounts.unique_email("nobody")}},
    ("POST", V + "/auth/login"): lambda w, r: {
        "json": {"email": w.accounts.unique_email("nobody"), "password": "wrong-Passw0rd!"}},
    ("POST", V + "/auth/refresh"): lambda w, r: {"json": {"refresh_token": "B" * 43}},
    ("POST", V + "/auth/siwe"): lambda w, r: {
        "json": {"message": "example wants you to sign in", "signature": "0x" + "11" * 65},
        "headers": _recent(w, r)},
    ("POST", V + "/auth/password/reset-request"): lambda w, r: {
        "json": {"email": w.accounts.unique_email("nobody")}},
    ("POST", V + "/auth/password/reset"): lambda w, r: {
        "json": {"token": "C" * 43, "password": "another-Passw0rd!"}},
    ("POST", V + "/auth/mfa/setup"): lambda w, r: {"headers": _recent(w, r)},
    ("POST", V + "/auth/mfa/enable"): lambda w, r: {"json": {"code": "000000"}, "headers": _recent(w, r)},
    ("POST", V + "/auth/mfa/disable"): lambda w, r: {"json": {"code": "000000"}, "headers": _recent(w, r)},
    ("POST", V + "/auth/reauth"): lambda w, r: {"json": {"password": _password(w, r)}},
    # the caller's own password again: the account stays usable for the rows after this one
    ("POST", V + "/auth/password/change"): lambda w, r: {
        "json": {"password": _password(w, r)}, "headers": _recent(w, r)},
    ("DELETE", V + "/auth/siwe"): lambda w, r: {"headers": _recent(w, r)},
    ("DELETE", V + "/keys/me/{key_id}"): lambda w, r: {"headers": _recent(w, r)},
    ("PUT", V + "/admin/users/{user_id}/role"): lambda w, r: {"json": {"role": "member"}},
    ("GET", V + "/admin/users"): lambda w, r: {"params": {"status": "active"}},
    ("GET", V + "/users"): lambda w, r: {"params": {"q": "authz"}},
    ("PUT", V + "/keys/me"): lambda w, r: {"json": _device_body(w, r)},
    ("POST", V + "/conversations"): lambda w, r: {
        "json": {"member_ids": [w.peer.id], "title": f"authz {r}"}},
    ("POST", V + "/conversations/{conversation_id}/members"): lambda w, r: {
        "json": {"user_ids": [w.extra.user_id]}},
    ("POST", V + "/conversations/{conversation_id}/messages"): lambda w, r: {
        "json": _send_as(w, r)},
    ("POST", V + "/conversations/{conversation_id}/read"): lambda w, r: {"json": {"seq": 1}},
    ("POST", V + "/files"): lambda w, r: {
        "params": {"conversation_id": w.conversation_id}, "content": b"more ciphertext",
        "headers": {"Content-Type": "application/octet-stream"}},
    ("GET", V + "/ledger/consistency"): lambda w, r: {"params": {"from_size": 0}},
    ("POST", V + "/auth/logout"): lambda w, r: {"headers": _fresh_session(w, r)},
}  # fmt: skip


def _password(world: World, role: str) -> str:
    user = world.caller(role)
    return user.account.password if user else world.accounts.password


def _recent(world: World, role: str) -> dict[str, str]:
    """A reauth token of the caller's session (none for callers that cannot get one)."""
    user = world.caller(role)
    if user is None or role == "disabled":
        return {}
    resp = world.accounts.http.post(
        "/auth/reauth", json={"password": user.account.password}, headers=user.headers
    )
    assert resp.status_code == 200, resp.text
    return {"X-Reauth-Token": resp.json()["reauth_token"]}


def _send_as(world: World, role: str) -> dict[str, Any]:
    """A well-formed envelope for the member's conversation, signed by the caller's own device."""
    sender = world.caller(role) or world.member
    return send_body(sender, world.conversation_id, [world.member, world.peer], f"authz send by {role}")


def _fresh_session(world: World, role: str) -> dict[str, str]:
    """Log the caller in again, so logging out ends only a session made for that."""
    user = world.caller(role)
    if user is None or role == "disabled":
        return world.headers(role)
    session = Account(user.account.user_id, user.account.email, user.account.password, "")
    return world.accounts.login(session).headers


def _call(world: World, method: str, template: str, role: str) -> httpx.Response:
    ids = dict(world.ids)
    for param, name in PATH_IDS.get((method, template), {}).items():
        ids[param] = world.send(f"to delete, for {role}") if name == "fresh_message_id" else ids[name]
    extra = REQUESTS.get((method, template), lambda w, r: {})(world, role)
    headers = {**world.headers(role), **extra.pop("headers", {})}
    url = world.stack.gateway_url + template.format(**ids)
    return httpx.request(method, url, headers=headers, timeout=20, **extra)


@pytest.mark.parametrize(("method", "path", *ROLES), MATRIX, ids=[f"{m} {p}" for m, p, *_ in MATRIX])
def test_authorization(
    world: World, method: str, path: str, anon: int, member: int, other: int, admin: int, disabled: int
) -> None:
    expected = {"anon": anon, "member": member, "other": other, "admin": admin, "disabled": disabled}
    got: dict[str, int] = {}
    for role in ROLES:
        resp = _call(world, method, path, role)
        got[role] = resp.status_code
        if resp.status_code >= 400 and path.startswith(V):
            assert set(resp.json()) == {"error"}, resp.text  # the SPEC error body, nothing more
    assert got == expected


def test_disabled_user_cannot_log_in(world: World) -> None:
    account = world.disabled.account
    resp = world.accounts.http.post(
        "/auth/login", json={"email": account.email, "password": account.password}
    )
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "account_disabled"


def test_hidden_and_missing_resources_answer_alike(world: World) -> None:
    """A non-member learns nothing from the answer: the same 404 body as for an id that never
    existed (no IDOR oracle)."""
    missing = {
        "conversation_id": uuid.uuid4().hex,
        "message_id": uuid.uuid4().hex,
        "file_id": uuid.uuid4().hex,
    }
    for template in (
        "/conversations/{conversation_id}", "/conversations/{conversation_id}/messages",
        "/messages/{message_id}/proof", "/files/{file_id}", "/files/{file_id}/proof",
    ):  # fmt: skip
        hidden = httpx.get(
            world.stack.gateway_url + V + template.format(**world.ids),
            headers=world.other.headers,
            timeout=20,
        )
        absent = httpx.get(
            world.stack.gateway_url + V + template.format(**missing), headers=world.other.headers, timeout=20
        )
        assert (hidden.status_code, hidden.json()) == (absent.status_code, absent.json()), template


def test_member_reads_what_it_may(world: World) -> None:
    """The allowed side of the matrix returns the member's real data, not just a 2xx."""
    history = httpx.get(
        f"{world.stack.gateway_url}{V}/conversations/{world.conversation_id}/messages",
        headers=world.member.headers, timeout=20,
    )  # fmt: skip
    assert world.message_id in [m["message_id"] for m in history.json()["messages"]]
    blob = httpx.get(
        f"{world.stack.gateway_url}{V}/files/{world.file_id}", headers=world.member.headers, timeout=20
    )
    assert blob.content == b"ciphertext of the authz test"
    assert blob.headers["etag"].strip('"') == hashlib.sha256(blob.content).hexdigest()


def test_paging_keeps_every_caller_to_their_own(world: World) -> None:
    """A list cursor names a position, not a list: another caller using the member's cursor still
    sees only their own conversations; paging history never opens a conversation to a non-member;
    hostile bodies are refused before anyone is authenticated, with the SPEC error body only."""
    http, base = world.accounts.http, world.stack.gateway_url + V
    for title in ("paging one", "paging two"):
        made = http.post("/conversations", json={"member_ids": [world.peer.id], "title": title},
                         headers=world.member.headers)  # fmt: skip
        assert made.status_code == 201, made.text
    first = httpx.get(f"{base}/conversations", params={"limit": 1}, headers=world.member.headers, timeout=20)
    assert first.json()["has_more"] is True
    cursor = first.json()["next_cursor"]
    for role in ("other", "admin"):
        page = httpx.get(f"{base}/conversations", params={"cursor": cursor, "limit": 200},
                         headers=world.headers(role), timeout=20).json()  # fmt: skip
        caller = world.caller(role)
        assert caller is not None
        assert all(caller.id in c["members"] for c in page["conversations"]), role
        assert world.conversation_id not in [c["conversation_id"] for c in page["conversations"]]
    anonymous = httpx.get(f"{base}/conversations", params={"cursor": cursor}, timeout=20)
    assert anonymous.status_code == 401
    for params in ({"after_seq": 0, "limit": 1}, {"before_seq": 2**53, "limit": 1}):
        hidden = httpx.get(f"{base}/conversations/{world.conversation_id}/messages", params=params,
                           headers=world.other.headers, timeout=20)  # fmt: skip
        assert hidden.status_code == 404
    for body, status in ((b"[" * 60_000, 422), (b"a" * 100_000, 413)):
        resp = httpx.post(f"{base}/conversations/{world.conversation_id}/members", content=body,
                          headers={"Content-Type": "application/json"}, timeout=20)  # fmt: skip
        assert (resp.status_code, set(resp.json())) == (status, {"error"})
