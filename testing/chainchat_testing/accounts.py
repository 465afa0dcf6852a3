"""Accounts on a test stack: one admin per stack, helpers to create approved users.

The first verified account of a stack becomes its admin, and the integration tests share one
stack, so the admin must be the first to verify an address: :func:`accounts_for` makes it before
handing out the helper. Tests that need users should use ``accounts.create_active()`` (register →
mail → verify → approve → login), which goes through the admin and so works in any order. The
``accounts``/``admin``/``member`` fixtures are in ``tests/integration/conftest.py``.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from devstack.components import MailDev
from devstack.stack import Stack

PASSWORD = "integration-Passw0rd!"
_LINK = re.compile(r"/(verify|reset-password)\?token=([A-Za-z0-9_-]+)")


def unique_email(prefix: str = "user") -> str:
    """An address no other test uses (tests run in any order against one stack)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.test"


@dataclass
class Account:
    user_id: str
    email: str
    password: str
    display_name: str
    access_token: str = ""
    refresh_token: str = ""
    user: dict[str, Any] = field(default_factory=dict)
    logged_in_at: float = 0.0
    reauth_token: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


class Accounts:
    """Drives the public API and reads the verification mails from maildev's REST API."""

    def __init__(self, gateway_url: str, mail_url: str) -> None:
        self.http = httpx.Client(base_url=f"{gateway_url}/api/v1", timeout=20)
        self.root = httpx.Client(base_url=gateway_url, timeout=20)
        self.mail_url = mail_url
        self.admin: Account | None = None
        self.password = PASSWORD

    unique_email = staticmethod(unique_email)

    def rejected_soon(self, token: str, code: str = "token_revoked", timeout: float = 5.0) -> None:
        """Wait until the gateway refuses ``token`` with 401 ``code`` (revocations are events)."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self.http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
            if resp.status_code == 401 and resp.json()["error"]["code"] == code:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"token still answered {resp.status_code} {resp.text[:200]}")
            time.sleep(0.05)

    def reauth_headers(self, account: Account, totp_code: str | None = None) -> dict[str, str]:
        """Bearer and a fresh ``X-Reauth-Token`` of the account's session (password given again)."""
        body = {"password": account.password, **({"totp_code": totp_code} if totp_code else {})}
        resp = self.http.post("/auth/reauth", json=body, headers=account.headers)
        assert resp.status_code == 200, resp.text
        account.reauth_token = resp.json()["reauth_token"]
        return {**account.headers, "X-Reauth-Token": account.reauth_token}

    def close(self) -> None:
        self.http.close()
        self.root.close()

    def mails_to(self, email: str) -> list[dict[str, Any]]:
        mails = httpx.get(f"{self.mail_url}/api/email", timeout=10).json()
        return [
            m for m in mails if any(t.get("address", "").lower() == email.lower() for t in m.get("to", []))
        ]

    def wait_link(self, email: str, kind: str = "verify", *, count: int = 1, timeout: float = 30) -> str:
        """The token of the ``count``-th mail of ``kind`` to ``email`` (waits for it)."""
        deadline = time.monotonic() + timeout
        while True:
            tokens = [
                match.group(2)
                for mail in self.mails_to(email)
                if (match := _LINK.search(mail.get("text", ""))) and match.group(1).startswith(kind)
            ]
            if len(tokens) >= count:
                return tokens[count - 1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} mail #{count} for {email} within {timeout:.0f}s")
            time.sleep(0.2)

    def register(
        self, email: str | None = None, password: str = PASSWORD, name: str | None = None
    ) -> Account:
        email = email or unique_email()
        name = name or f"User {email[:17]}"
        resp = self.http.post(
            "/auth/register", json={"email": email, "password": password, "display_name": name}
        )
        assert resp.status_code == 201, resp.text
        return Account(
            user_id=resp.json()["user_id"], email=email.lower(), password=password, display_name=name
        )

    def verify(self, account: Account) -> str:
        resp = self.http.post("/auth/verify", json={"token": self.wait_link(account.email)})
        assert resp.status_code == 200, resp.text
        status: str = resp.json()["status"]
        return status

    def login(self, account: Account, totp_code: str | None = None) -> Account:
        body = {"email": account.email, "password": account.password}
        if totp_code:
            body["totp_code"] = totp_code
        resp = self.http.post("/auth/login", json=body)
        assert resp.status_code == 200, resp.text
        data = resp.json()
        account.access_token, account.refresh_token, account.user = (
            data["access_token"],
            data["refresh_token"],
            data["user"],
        )
        account.reauth_token = data.get("reauth_token") or ""
        account.logged_in_at = time.monotonic()
        return account

    def admin_account(self) -> Account:
        """The admin, logged in again when its access token is getting old (15 min lifetime)."""
        if self.admin is None:
            account = self.register(unique_email("admin"), name="Stack Admin")
            if self.verify(account) != "active":
                pytest.fail("another account was verified before the admin fixture; use the accounts fixture")
            self.admin = account
        if not self.admin.access_token or time.monotonic() - self.admin.logged_in_at > 600:
            self.login(self.admin)
        return self.admin

    def approve(self, account: Account) -> None:
        resp = self.http.post(f"/admin/users/{account.user_id}/approve", headers=self.admin_account().headers)
        assert resp.status_code == 200, resp.text

    def create_active(
        self, prefix: str = "user", name: str | None = None, password: str = PASSWORD
    ) -> Account:
        """A verified, approved, logged-in member."""
        account = self.register(unique_email(prefix), password=password, name=name)
        if self.verify(account) == "pending_approval":
            self.approve(account)
        return self.login(account)


# one helper (so one admin) per stack, whichever test folder asks first (tests/security reuses it)
_HELPERS: dict[int, Accounts] = {}


def accounts_for(stack: Stack, mail: MailDev) -> Accounts:
    """The stack's account helper, its admin created before any other account verifies."""
    helper = _HELPERS.get(id(stack))
    if helper is None:
        helper = _HELPERS[id(stack)] = Accounts(stack.gateway_url, mail.web_url)
        helper.admin_account()
    return helper
