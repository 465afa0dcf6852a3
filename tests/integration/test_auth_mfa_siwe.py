"""Second factors through the gateway: TOTP (codes from pyotp) with recovery codes, and
Sign-In with Ethereum (EIP-4361 messages built with ``siwe``, signed with ``eth_account``)."""

from __future__ import annotations

import time
from typing import Any

import pyotp
import pytest
from eth_account import Account as EthAccount

from chainchat_testing.http import error_code
from chainchat_testing.siwe import sign, siwe_message

pytestmark = pytest.mark.integration

# `accounts`, `admin`, `member` come from tests/integration/conftest.py


def _login(accounts: Any, user: Any, code: str | None = None) -> Any:
    body = {"email": user.email, "password": user.password}
    if code is not None:
        body["totp_code"] = code
    return accounts.http.post("/auth/login", json=body)


def _next_step_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30 s step: accepted (one step of clock drift is allowed) and not
    used yet, so the test need not wait for the window to turn."""
    return totp.at(time.time() + totp.interval)


def test_totp_enrol_login_replay_recovery_and_disable(accounts: Any) -> None:
    user = accounts.create_active("mfa")
    recent = accounts.reauth_headers(user)  # MFA changes need the password again (SPEC §11)
    setup = accounts.http.post("/auth/mfa/setup", headers=recent).json()
    assert setup["otpauth_uri"].startswith("otpauth://totp/ChainChat:")
    totp = pyotp.TOTP(setup["secret"])
    wrong = accounts.http.post("/auth/mfa/enable", json={"code": "000000"}, headers=recent)
    assert (wrong.status_code, error_code(wrong)) == (401, "invalid_mfa_code")
    enabled = accounts.http.post("/auth/mfa/enable", json={"code": totp.now()}, headers=recent)
    assert enabled.status_code == 200
    codes = enabled.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    assert accounts.http.get("/auth/me", headers=user.headers).json()["mfa_enabled"] is True

    assert error_code(_login(accounts, user)) == "mfa_required"
    assert error_code(_login(accounts, user, "123456")) == "invalid_mfa_code"
    code = _next_step_code(totp)
    assert _login(accounts, user, code).status_code == 200
    replay = _login(accounts, user, code)
    assert (replay.status_code, error_code(replay)) == (401, "invalid_mfa_code")

    assert _login(accounts, user, codes[0].upper()).status_code == 200
    assert error_code(_login(accounts, user, codes[0])) == "invalid_mfa_code"

    fresh = accounts.login(user, totp_code=codes[1])
    off = accounts.http.post(
        "/auth/mfa/disable",
        json={"code": codes[2]},
        headers={**fresh.headers, "X-Reauth-Token": fresh.reauth_token},
    )
    assert off.json() == {"mfa_enabled": False}
    assert _login(accounts, user).status_code == 200


def test_mfa_requires_login_and_valid_codes(accounts: Any, member: Any) -> None:
    assert accounts.http.post("/auth/mfa/setup").status_code == 401
    recent = {**member.headers, "X-Reauth-Token": member.reauth_token}
    enable = accounts.http.post("/auth/mfa/enable", json={"code": "123456"}, headers=recent)
    assert (enable.status_code, error_code(enable)) == (409, "mfa_setup_required")
    disable = accounts.http.post("/auth/mfa/disable", json={"code": "123456"}, headers=recent)
    assert (disable.status_code, error_code(disable)) == (409, "mfa_not_enabled")
    bad = accounts.http.post("/auth/mfa/enable", json={"code": "<script>"}, headers=recent)
    assert bad.status_code == 422


def test_siwe_links_a_wallet_then_logs_in_with_it(accounts: Any) -> None:
    user = accounts.create_active("wallet")
    wallet = EthAccount.create()
    text = siwe_message(accounts, wallet.address)
    unlinked = accounts.http.post("/auth/siwe", json={"message": text, "signature": sign(wallet, text)})
    assert (unlinked.status_code, error_code(unlinked)) == (401, "wallet_not_linked")

    text = siwe_message(accounts, wallet.address)
    body = {"message": text, "signature": sign(wallet, text)}
    linked = accounts.http.post("/auth/siwe", json=body, headers=accounts.reauth_headers(user))
    assert linked.status_code == 200
    assert linked.json()["user"]["wallet_address"] == wallet.address
    replay = accounts.http.post("/auth/siwe", json=body)
    assert (replay.status_code, error_code(replay)) == (401, "invalid_nonce")

    text = siwe_message(accounts, wallet.address)
    login = accounts.http.post("/auth/siwe", json={"message": text, "signature": sign(wallet, text)})
    assert login.status_code == 200
    assert login.json()["user"]["id"] == user.user_id
    me = accounts.http.get("/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["wallet_address"] == wallet.address

    other = accounts.create_active("wallet2")
    text = siwe_message(accounts, wallet.address)
    taken = accounts.http.post(
        "/auth/siwe",
        json={"message": text, "signature": sign(wallet, text)},
        headers=accounts.reauth_headers(other),
    )
    assert (taken.status_code, error_code(taken)) == (409, "wallet_in_use")


def test_siwe_checks_domain_chain_and_signature(accounts: Any) -> None:
    wallet, impostor = EthAccount.create(), EthAccount.create()
    text = siwe_message(accounts, wallet.address, domain="evil.example")
    resp = accounts.http.post("/auth/siwe", json={"message": text, "signature": sign(wallet, text)})
    assert (resp.status_code, error_code(resp)) == (401, "siwe_domain_mismatch")
    text = siwe_message(accounts, wallet.address, chain_id=1)
    resp = accounts.http.post("/auth/siwe", json={"message": text, "signature": sign(wallet, text)})
    assert (resp.status_code, error_code(resp)) == (401, "siwe_chain_mismatch")
    text = siwe_message(accounts, wallet.address)
    resp = accounts.http.post("/auth/siwe", json={"message": text, "signature": sign(impostor, text)})
    assert (resp.status_code, error_code(resp)) == (401, "invalid_siwe")
    resp = accounts.http.post("/auth/siwe", json={"message": "hello", "signature": "0x" + "00" * 65})
    assert (resp.status_code, error_code(resp)) == (401, "invalid_siwe")
    resp = accounts.http.post("/auth/siwe", json={"message": text, "signature": "nope"})
    assert resp.status_code == 422
