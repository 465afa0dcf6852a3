"""Trust on the device, server side (SPEC §11), tried as an attacker holding a stolen access token:
every account-changing action needs recent authentication, a password reset leaves the thief no
way back, wallet login asks for TOTP, and enabling MFA or changing the password ends the other
sessions. Each attack is performed and must be refused."""

from __future__ import annotations

import time

import pyotp
import pytest
from eth_account import Account as EthAccount

from chainchat_testing.accounts import Account, Accounts
from chainchat_testing.http import error_code
from chainchat_testing.siwe import signed_siwe

pytestmark = pytest.mark.integration


def _second_session(accounts: Accounts, account: Account) -> Account:
    """The same account signed in a second time (a thief's session, or another device)."""
    return accounts.login(Account(account.user_id, account.email, account.password, account.display_name))


def _enable_mfa(accounts: Accounts, user: Account) -> pyotp.TOTP:
    recent = accounts.reauth_headers(user)
    setup = accounts.http.post("/auth/mfa/setup", headers=recent).json()
    totp = pyotp.TOTP(setup["secret"])
    resp = accounts.http.post("/auth/mfa/enable", json={"code": totp.now()}, headers=recent)
    assert resp.status_code == 200, resp.text
    return totp


def test_a_stolen_token_cannot_change_the_account(accounts: Accounts) -> None:
    """Token only: no wallet link or unlink, no MFA change, no password change, no device revocation."""
    owner = accounts.create_active("victim")
    stolen = owner.headers  # what a thief has: the bearer, nothing else
    attempts = [
        ("POST", "/auth/siwe", signed_siwe(accounts, EthAccount.create())),
        ("DELETE", "/auth/siwe", None),
        ("POST", "/auth/mfa/setup", {}),
        ("POST", "/auth/mfa/enable", {"code": "123456"}),
        ("POST", "/auth/mfa/disable", {"code": "123456"}),
        ("POST", "/auth/password/change", {"password": "thief-chosen-Passw0rd"}),
        ("DELETE", f"/keys/me/{'0' * 32}", None),
    ]
    for method, path, body in attempts:
        resp = accounts.http.request(method, path, json=body, headers=stolen)
        assert (resp.status_code, error_code(resp)) == (403, "reauth_required"), (method, path, resp.text)
        forged = accounts.http.request(method, path, json=body, headers={**stolen, "X-Reauth-Token": "x.y.z"})
        assert (forged.status_code, error_code(forged)) == (403, "reauth_required"), (method, path)
    me = accounts.http.get("/auth/me", headers=stolen).json()
    assert (me["wallet_address"], me["mfa_enabled"]) == (None, False)
    # and the password still is the owner's
    assert (
        accounts.http.post("/auth/login", json={"email": owner.email, "password": owner.password}).status_code
        == 200
    )


def test_reauth_tokens_are_bound_and_are_not_access_tokens(accounts: Accounts) -> None:
    owner = accounts.create_active("bound")
    other_session = _second_session(accounts, owner)
    wrong = accounts.http.post("/auth/reauth", json={"password": "not-the-password"}, headers=owner.headers)
    assert (wrong.status_code, error_code(wrong)) == (403, "invalid_credentials")
    reply = accounts.http.post(
        "/auth/reauth", json={"password": owner.password}, headers=owner.headers
    ).json()
    assert 0 < reply["expires_in"] <= 300
    token = reply["reauth_token"]
    as_bearer = accounts.http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert (as_bearer.status_code, error_code(as_bearer)) == (401, "invalid_token")
    # another session of the same account, or another account, cannot use it
    for headers in (other_session.headers, accounts.create_active("bystander").headers):
        resp = accounts.http.post("/auth/mfa/setup", headers={**headers, "X-Reauth-Token": token})
        assert (resp.status_code, error_code(resp)) == (403, "reauth_required")
    ok = accounts.http.post("/auth/mfa/setup", headers={**owner.headers, "X-Reauth-Token": token})
    assert ok.status_code == 200, ok.text
    anon = accounts.http.post("/auth/reauth", json={"password": owner.password})
    assert anon.status_code == 401


def test_wallet_link_needs_reauth_and_unlink_ends_wallet_login(accounts: Accounts) -> None:
    owner = accounts.create_active("linker")
    wallet = EthAccount.create()
    linked = accounts.http.post(
        "/auth/siwe", json=signed_siwe(accounts, wallet), headers=accounts.reauth_headers(owner)
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["user"]["wallet_address"] == wallet.address
    login = accounts.http.post("/auth/siwe", json=signed_siwe(accounts, wallet))
    assert login.status_code == 200
    assert login.json()["reauth_token"]  # a wallet login is a full login too
    unlinked = accounts.http.delete("/auth/siwe", headers=accounts.reauth_headers(owner))
    assert (unlinked.status_code, unlinked.json()["wallet_address"]) == (200, None)
    again = accounts.http.post("/auth/siwe", json=signed_siwe(accounts, wallet))
    assert (again.status_code, error_code(again)) == (401, "wallet_not_linked")
    twice = accounts.http.delete("/auth/siwe", headers=accounts.reauth_headers(owner))
    assert (twice.status_code, error_code(twice)) == (409, "wallet_not_linked")


def test_wallet_login_cannot_bypass_totp(accounts: Accounts) -> None:
    owner = accounts.create_active("wallet-mfa")
    wallet = EthAccount.create()
    assert (
        accounts.http.post(
            "/auth/siwe", json=signed_siwe(accounts, wallet), headers=accounts.reauth_headers(owner)
        ).status_code
        == 200
    )
    totp = _enable_mfa(accounts, owner)
    signed = signed_siwe(accounts, wallet)
    bypass = accounts.http.post("/auth/siwe", json=signed)
    assert (bypass.status_code, error_code(bypass)) == (401, "mfa_required")
    wrong = accounts.http.post("/auth/siwe", json={**signed, "totp_code": "000000"})
    assert (wrong.status_code, error_code(wrong)) == (401, "invalid_mfa_code")
    ok = accounts.http.post("/auth/siwe", json={**signed, "totp_code": totp.at(time.time() + totp.interval)})
    assert ok.status_code == 200, ok.text
    assert ok.json()["user"]["id"] == owner.user_id


def test_enabling_mfa_ends_the_other_sessions(accounts: Accounts) -> None:
    owner = accounts.create_active("mfa-kick")
    thief = _second_session(accounts, owner)
    _enable_mfa(accounts, owner)
    accounts.rejected_soon(thief.access_token)
    refreshed = accounts.http.post("/auth/refresh", json={"refresh_token": thief.refresh_token})
    assert (refreshed.status_code, error_code(refreshed)) == (401, "session_revoked")
    assert accounts.http.get("/auth/me", headers=owner.headers).json()["mfa_enabled"] is True


def test_changing_the_password_ends_the_other_sessions(accounts: Accounts) -> None:
    owner = accounts.create_active("pw-change")
    thief = _second_session(accounts, owner)
    short = accounts.http.post(
        "/auth/password/change", json={"password": "short"}, headers=accounts.reauth_headers(owner)
    )
    assert short.status_code == 422
    new_password = "a-fresh-Passw0rd-for-me"
    changed = accounts.http.post(
        "/auth/password/change", json={"password": new_password}, headers=accounts.reauth_headers(owner)
    )
    assert changed.status_code == 204, changed.text
    accounts.rejected_soon(thief.access_token)
    assert accounts.http.post("/auth/refresh", json={"refresh_token": thief.refresh_token}).status_code == 401
    assert accounts.http.get("/auth/me", headers=owner.headers).status_code == 200
    old = accounts.http.post("/auth/login", json={"email": owner.email, "password": owner.password})
    assert (old.status_code, error_code(old)) == (401, "invalid_credentials")
    assert (
        accounts.http.post("/auth/login", json={"email": owner.email, "password": new_password}).status_code
        == 200
    )


def test_a_password_reset_ends_a_takeover(accounts: Accounts) -> None:
    """A thief who got in (and could even give the old password) links a wallet as a back door;
    the owner resets the password by e-mail: the thief's sessions end and the wallet is unlinked."""
    owner = accounts.create_active("takeover")
    thief = _second_session(accounts, owner)
    wallet = EthAccount.create()
    back_door = accounts.http.post(
        "/auth/siwe", json=signed_siwe(accounts, wallet), headers=accounts.reauth_headers(thief)
    )
    assert back_door.status_code == 200, back_door.text
    wallet_session = back_door.json()

    assert accounts.http.post("/auth/password/reset-request", json={"email": owner.email}).status_code == 202
    token = accounts.wait_link(owner.email, "reset")
    reset = accounts.http.post(
        "/auth/password/reset", json={"token": token, "password": "owner-takes-it-Back-1"}
    )
    assert reset.status_code == 204, reset.text

    for access in (thief.access_token, wallet_session["access_token"]):
        accounts.rejected_soon(access)
    for refresh_token in (thief.refresh_token, wallet_session["refresh_token"]):
        assert accounts.http.post("/auth/refresh", json={"refresh_token": refresh_token}).status_code == 401
    via_wallet = accounts.http.post("/auth/siwe", json=signed_siwe(accounts, wallet))
    assert (via_wallet.status_code, error_code(via_wallet)) == (401, "wallet_not_linked")
    owner.password = "owner-takes-it-Back-1"
    assert accounts.login(owner).user["wallet_address"] is None
