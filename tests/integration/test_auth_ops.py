"""Operational guarantees: rate limits shared by gateways, mail survives an SMTP outage, and no
password, token or secret reaches the logs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

# `accounts`, `admin`, `member` come from tests/integration/conftest.py


def _code(resp: Any) -> str:
    code: str = resp.json()["error"]["code"]
    return code


@pytest.fixture(scope="module")
def proxied_gateway(running_stack: Any) -> Iterator[httpx.Client]:
    """A second gateway that trusts one proxy hop, so tests can speak from many client IPs."""
    svc = running_stack.add_service("gateway", env={"TRUSTED_PROXIES": "1"})
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=f"{svc.url}/api/v1", timeout=20) as client:
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "second gateway not ready"
            time.sleep(0.3)
        yield client
    svc.stop()


def test_failed_logins_per_account_are_limited_across_gateways(
    accounts: Any, proxied_gateway: httpx.Client
) -> None:
    user = accounts.create_active("limit")
    bad = {"email": user.email, "password": "wrong password!!"}
    for attempt in range(5):
        # alternate gateways: the count lives in auth, not in one gateway's memory
        client = accounts.http if attempt % 2 else proxied_gateway
        headers = {"X-Forwarded-For": f"198.51.100.{attempt + 1}"}
        assert client.post("/auth/login", json=bad, headers=headers).status_code == 401
    blocked = accounts.http.post("/auth/login", json={"email": user.email, "password": user.password})
    assert (blocked.status_code, _code(blocked)) == (429, "rate_limited")
    assert 1 <= int(blocked.headers["Retry-After"]) <= 900


def test_failed_logins_per_ip_are_limited(accounts: Any, proxied_gateway: httpx.Client) -> None:
    ip = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    headers = {"X-Forwarded-For": ip}
    for _ in range(20):
        body = {"email": accounts.unique_email("ip"), "password": "wrong password!!"}
        assert proxied_gateway.post("/auth/login", json=body, headers=headers).status_code == 401
    body = {"email": accounts.unique_email("ip"), "password": "wrong password!!"}
    blocked = proxied_gateway.post("/auth/login", json=body, headers=headers)
    assert (blocked.status_code, _code(blocked)) == (429, "rate_limited")
    assert int(blocked.headers["Retry-After"]) <= 60
    elsewhere = proxied_gateway.post("/auth/login", json=body, headers={"X-Forwarded-For": "192.0.2.77"})
    assert elsewhere.status_code == 401


def test_register_and_reset_requests_are_limited_per_email(accounts: Any) -> None:
    email = accounts.unique_email("spam")
    body = {"email": email, "password": accounts.password, "display_name": "Spam"}
    statuses = [accounts.http.post("/auth/register", json=body).status_code for _ in range(4)]
    assert statuses == [201, 409, 409, 429]
    resets = [accounts.http.post("/auth/password/reset-request", json={"email": email}) for _ in range(4)]
    assert [r.status_code for r in resets] == [202, 202, 202, 429]
    assert "Retry-After" in resets[-1].headers


def test_registration_survives_smtp_outage(accounts: Any, running_stack: Any) -> None:
    running_stack.mail.stop()
    try:
        started = time.monotonic()
        account = accounts.register(accounts.unique_email("outage"))
        assert time.monotonic() - started < 5  # the reply does not wait for SMTP
        time.sleep(2)
    finally:
        running_stack.mail.start()
    token = accounts.wait_link(account.email, timeout=90)
    assert accounts.http.post("/auth/verify", json={"token": token}).status_code == 200


def test_no_secret_reaches_the_logs(accounts: Any, running_stack: Any) -> None:
    user = accounts.create_active("logs", password="log-check-passphrase-31337")
    secrets = [user.password, user.access_token, user.refresh_token, user.reauth_token]
    refreshed = accounts.http.post("/auth/refresh", json={"refresh_token": user.refresh_token}).json()
    secrets += [refreshed["access_token"], refreshed["refresh_token"]]
    # the login's reauth token still holds: a refresh keeps the session
    setup = accounts.http.post(
        "/auth/mfa/setup",
        headers={"Authorization": f"Bearer {refreshed['access_token']}", "X-Reauth-Token": user.reauth_token},
    ).json()
    secrets.append(setup["secret"])
    secrets.append(accounts.wait_link(user.email))
    accounts.http.post("/auth/login", json={"email": user.email, "password": "wrong-but-secret-pw-42"})
    secrets.append("wrong-but-secret-pw-42")
    time.sleep(1)  # let the processes flush
    logs = {
        name: (running_stack.var_dir / "log" / f"{name}.log").read_text(errors="replace")
        for name in ("auth", "gateway")
    }
    assert logs["auth"]  # the capture works at all
    for name, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"a secret appears in {name}.log"
