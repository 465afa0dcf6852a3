"""Accounts through the gateway on the real stack: register → mail → verify → approve → login →
refresh → logout, password reset, and the answers to bad input."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

GOOD_PASSWORD = "a perfectly fine passphrase"

# `accounts` and `admin` come from tests/integration/conftest.py (their classes:
# chainchat_testing.accounts Accounts / Account; annotated loosely here).


def _code(resp: httpx.Response) -> str:
    code: str = resp.json()["error"]["code"]
    return code


def test_register_mail_link_page_approve_login_refresh_logout(accounts: Any, admin: Any) -> None:
    email = accounts.unique_email("Flow").upper()
    account = accounts.register(email, name="Flow Tester")
    assert account.email == email.lower()
    mail = accounts.mails_to(account.email)
    token = accounts.wait_link(account.email)
    mail = accounts.mails_to(account.email)[0]
    assert f"/verify?token={token}" in mail["html"]
    assert mail["subject"].startswith("Verify")

    page = accounts.root.get("/verify", params={"token": token})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "administrator will approve" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    again = accounts.root.get("/verify", params={"token": token})
    assert again.status_code == 400

    blocked = accounts.http.post("/auth/login", json={"email": account.email, "password": accounts.password})
    assert (blocked.status_code, _code(blocked)) == (403, "pending_approval")
    accounts.approve(account)
    accounts.login(account)
    me = accounts.http.get("/auth/me", headers=account.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["email"] == account.email
    assert (body["role"], body["status"], body["mfa_enabled"]) == ("member", "active", False)
    assert not {"password_hash", "totp_secret"} & body.keys()

    refreshed = accounts.http.post("/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["token_type"] == "bearer"
    assert new["expires_in"] == 900
    assert new["refresh_token"] != account.refresh_token

    out = accounts.http.post("/auth/logout", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert out.status_code == 204
    dead = accounts.http.get("/auth/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert (dead.status_code, _code(dead)) == (401, "token_revoked")
    gone = accounts.http.post("/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert (gone.status_code, _code(gone)) == (401, "session_revoked")


def test_refresh_token_reuse_revokes_the_whole_family(accounts: Any) -> None:
    account = accounts.create_active("reuse")
    first = account.refresh_token
    second = accounts.http.post("/auth/refresh", json={"refresh_token": first}).json()
    replay = accounts.http.post("/auth/refresh", json={"refresh_token": first})
    assert (replay.status_code, _code(replay)) == (401, "refresh_token_reused")
    after = accounts.http.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert (after.status_code, _code(after)) == (401, "session_revoked")
    accounts.rejected_soon(second["access_token"])


def test_unknown_email_and_wrong_password_give_the_same_answer(accounts: Any) -> None:
    account = accounts.create_active("samefail")
    wrong = accounts.http.post("/auth/login", json={"email": account.email, "password": "not-the-password"})
    unknown = accounts.http.post(
        "/auth/login", json={"email": accounts.unique_email("ghost"), "password": "whatever-pw"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert _code(wrong) == "invalid_credentials"


def test_unverified_account_cannot_log_in_and_resend_is_always_202(accounts: Any) -> None:
    account = accounts.register(accounts.unique_email("unverified"))
    resp = accounts.http.post("/auth/login", json={"email": account.email, "password": accounts.password})
    assert (resp.status_code, _code(resp)) == (403, "email_not_verified")
    for email in (account.email, accounts.unique_email("nobody")):
        assert accounts.http.post("/auth/verify/resend", json={"email": email}).status_code == 202
    accounts.wait_link(account.email)  # the registration mail; the resend waits for its cool-down


def test_duplicate_email_is_409_whatever_the_case(accounts: Any) -> None:
    account = accounts.register(accounts.unique_email("dup"))
    body = {"email": account.email.upper(), "password": accounts.password, "display_name": "Dup"}
    resp = accounts.http.post("/auth/register", json=body)
    assert (resp.status_code, _code(resp)) == (409, "email_taken")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "not-an-email", "password": GOOD_PASSWORD, "display_name": "X"}, "validation_error"),
        ({"email": "a@b.test", "password": "short", "display_name": "X"}, "validation_error"),
        ({"email": "a@b.test", "password": GOOD_PASSWORD, "display_name": ""}, "validation_error"),
        (
            {"email": "a@b.test", "password": GOOD_PASSWORD, "display_name": "X", "role": "admin"},
            "validation_error",
        ),
        ({"email": "a@b.test", "password": "x" * 300, "display_name": "X"}, "validation_error"),
        (
            {"email": "a@b.test", "password": GOOD_PASSWORD, "display_name": "bad\u0000name"},
            "validation_error",
        ),
    ],
)
def test_register_rejects_bad_input_with_422(accounts: Any, body: dict[str, str], code: str) -> None:
    resp = accounts.http.post("/auth/register", json=body)
    assert (resp.status_code, _code(resp)) == (422, code)


def test_common_password_is_refused(accounts: Any) -> None:
    body = {"email": accounts.unique_email("weak"), "password": "password123", "display_name": "Weak"}
    resp = accounts.http.post("/auth/register", json=body)
    assert (resp.status_code, _code(resp)) == (422, "weak_password")


def test_malformed_json_and_wrong_types_are_422(accounts: Any) -> None:
    raw = accounts.http.post(
        "/auth/login", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (raw.status_code, _code(raw)) == (422, "validation_error")
    typed = accounts.http.post("/auth/login", json={"email": ["x"], "password": 5})
    assert typed.status_code == 422
    bad_token = accounts.http.post("/auth/verify", json={"token": "'; DROP TABLE user_account; --"})
    assert bad_token.status_code == 422


def test_injection_strings_are_plain_data(accounts: Any) -> None:
    name = "Robert'); DROP TABLE user_account;-- <script>alert(1)</script>"
    account = accounts.create_active("inject", name=name)
    me = accounts.http.get("/auth/me", headers=account.headers).json()
    assert me["display_name"] == name
    search = accounts.http.get("/users", params={"q": "Robert'); DROP"}, headers=account.headers)
    assert search.status_code == 200
    assert account.user_id in [u["user_id"] for u in search.json()]
    wildcard = accounts.http.get("/users", params={"q": "%"}, headers=account.headers)
    assert wildcard.json() == []


def test_password_reset_by_mail_revokes_sessions(accounts: Any) -> None:
    account = accounts.create_active("reset")
    for email in (account.email, accounts.unique_email("nobody")):
        resp = accounts.http.post("/auth/password/reset-request", json={"email": email})
        assert resp.status_code == 202
    token = accounts.wait_link(account.email, "reset")
    weak = accounts.http.post("/auth/password/reset", json={"token": token, "password": "1234567890"})
    assert (weak.status_code, _code(weak)) == (422, "weak_password")
    ok = accounts.http.post(
        "/auth/password/reset", json={"token": token, "password": "a fresh passphrase 42"}
    )
    assert ok.status_code == 204
    reused = accounts.http.post(
        "/auth/password/reset", json={"token": token, "password": "another passphrase 42"}
    )
    assert (reused.status_code, _code(reused)) == (400, "invalid_token")
    accounts.rejected_soon(account.access_token)
    account.password = "a fresh passphrase 42"
    accounts.login(account)


def test_user_search_lists_active_users_without_emails(accounts: Any) -> None:
    tag = accounts.unique_email("x")[2:10]
    alice = accounts.create_active("search", name=f"Zed{tag} Alice")
    pending = accounts.register(accounts.unique_email("search"), name=f"Zed{tag} Pending")
    accounts.verify(pending)
    resp = accounts.http.get("/users", params={"q": f"zed{tag}"}, headers=alice.headers)
    assert resp.status_code == 200
    assert resp.json() == [{"user_id": alice.user_id, "display_name": f"Zed{tag} Alice"}]
    by_mail = accounts.http.get("/users", params={"q": alice.email[:12].upper()}, headers=alice.headers)
    assert alice.user_id in [u["user_id"] for u in by_mail.json()]
    for q in ("", "q" * 101):
        assert accounts.http.get("/users", params={"q": q}, headers=alice.headers).status_code == 422
    assert accounts.http.get("/users", params={"q": "a"}).status_code == 401
