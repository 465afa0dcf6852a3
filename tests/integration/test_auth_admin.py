"""Administration through the gateway: approvals, rejection, disabling (sessions die at once),
roles, the last-admin rule, and the audit log with its proof status."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration

# `accounts`, `admin`, `member` come from tests/integration/conftest.py


def _code(resp: Any) -> str:
    code: str = resp.json()["error"]["code"]
    return code


def test_pending_list_approve_and_reject(accounts: Any, admin: Any) -> None:
    first = accounts.register(accounts.unique_email("pend"))
    second = accounts.register(accounts.unique_email("pend"))
    for account in (first, second):
        assert accounts.verify(account) == "pending_approval"
    pending = accounts.http.get("/admin/users", params={"status": "pending"}, headers=admin.headers).json()[
        "users"
    ]
    assert {first.user_id, second.user_id} <= {u["id"] for u in pending}
    assert all(u["status"] == "pending_approval" for u in pending)

    approved = accounts.http.post(f"/admin/users/{first.user_id}/approve", headers=admin.headers)
    assert (approved.status_code, approved.json()["status"]) == (200, "active")
    rejected = accounts.http.post(f"/admin/users/{second.user_id}/reject", headers=admin.headers)
    assert rejected.json()["status"] == "rejected"
    resp = accounts.http.post("/auth/login", json={"email": second.email, "password": second.password})
    assert (resp.status_code, _code(resp)) == (403, "account_rejected")
    again = accounts.http.post(f"/admin/users/{first.user_id}/reject", headers=admin.headers)
    assert (again.status_code, _code(again)) == (409, "invalid_state")


def test_disable_revokes_sessions_at_once_and_enable_restores(accounts: Any, admin: Any) -> None:
    user = accounts.create_active("disable")
    disabled = accounts.http.post(f"/admin/users/{user.user_id}/disable", headers=admin.headers)
    assert disabled.json()["status"] == "disabled"
    accounts.rejected_soon(user.access_token)
    refresh = accounts.http.post("/auth/refresh", json={"refresh_token": user.refresh_token})
    assert refresh.status_code == 401
    login = accounts.http.post("/auth/login", json={"email": user.email, "password": user.password})
    assert (login.status_code, _code(login)) == (403, "account_disabled")
    listed = accounts.http.get("/admin/users", params={"status": "disabled"}, headers=admin.headers)
    assert user.user_id in [u["id"] for u in listed.json()["users"]]
    enabled = accounts.http.post(f"/admin/users/{user.user_id}/enable", headers=admin.headers)
    assert enabled.json()["status"] == "active"
    accounts.login(user)


def test_roles_and_the_last_admin(accounts: Any, admin: Any) -> None:
    user = accounts.create_active("role")
    promoted = accounts.http.put(
        f"/admin/users/{user.user_id}/role", json={"role": "admin"}, headers=admin.headers
    )
    assert promoted.json()["role"] == "admin"
    accounts.login(user)
    assert accounts.http.get("/admin/users", headers=user.headers).status_code == 200
    demoted = accounts.http.put(
        f"/admin/users/{user.user_id}/role", json={"role": "member"}, headers=admin.headers
    )
    assert demoted.json()["role"] == "member"
    accounts.rejected_soon(user.access_token)  # the admin claim dies with the session
    accounts.login(user)
    assert accounts.http.get("/admin/users", headers=user.headers).status_code == 403

    admins = [
        u
        for u in accounts.http.get("/admin/users", headers=admin.headers).json()["users"]
        if u["role"] == "admin"
    ]
    if len([u for u in admins if u["status"] == "active"]) == 1:
        resp = accounts.http.put(
            f"/admin/users/{admin.user_id}/role", json={"role": "member"}, headers=admin.headers
        )
        assert (resp.status_code, _code(resp)) == (409, "last_admin")
        resp = accounts.http.post(f"/admin/users/{admin.user_id}/disable", headers=admin.headers)
        assert (resp.status_code, _code(resp)) == (409, "last_admin")


def test_admin_input_errors(accounts: Any, admin: Any, member: Any) -> None:
    missing = accounts.http.post("/admin/users/no-such-user/approve", headers=admin.headers)
    assert (missing.status_code, _code(missing)) == (404, "user_not_found")
    bad_action = accounts.http.post(f"/admin/users/{member.user_id}/promote", headers=admin.headers)
    assert bad_action.status_code in (404, 405, 422)
    bad_role = accounts.http.put(
        f"/admin/users/{member.user_id}/role", json={"role": "root"}, headers=admin.headers
    )
    assert bad_role.status_code == 422
    bad_status = accounts.http.get("/admin/users", params={"status": "weird"}, headers=admin.headers)
    assert bad_status.status_code == 422
    for method, path in (("GET", "/admin/users"), ("POST", f"/admin/users/{member.user_id}/disable")):
        assert accounts.http.request(method, path, headers=member.headers).status_code == 403
        assert accounts.http.request(method, path).status_code == 401


def test_audit_log_records_security_events_with_proof_status(accounts: Any, admin: Any) -> None:
    user = accounts.create_active("audit")
    accounts.http.post("/auth/login", json={"email": user.email, "password": "wrong password!"})
    resp = accounts.http.get(
        "/admin/audit", params={"user_id": user.user_id, "limit": 50}, headers=admin.headers
    )
    assert resp.status_code == 200
    events = resp.json()["events"]
    types = {e["type"] for e in events}
    assert {"register", "email_verified", "user_approved", "login", "login_failed"} <= types
    for event in events:
        assert event["proof_status"] in ("pending", "anchored")
        assert event["proof"]["entry"] == {
            "kind": "audit",
            "id": event["id"],
            "digest": event["digest"],
            "at": event["at"],
        }
    only = accounts.http.get(
        "/admin/audit", params={"type": "login_failed", "limit": 5}, headers=admin.headers
    )
    assert {e["type"] for e in only.json()["events"]} == {"login_failed"}
    assert accounts.http.get("/admin/audit", params={"limit": 0}, headers=admin.headers).status_code == 422
    assert (
        accounts.http.get("/admin/audit", params={"since": "yesterday"}, headers=admin.headers).status_code
        == 422
    )
