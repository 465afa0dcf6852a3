"""Tokens out of reach of scripts (SPEC §11), against the real gateway: the refresh token travels
as an HttpOnly, SameSite=Strict cookie scoped to /api/v1/auth (not Secure on plain-HTTP loopback),
refresh and logout take it from the cookie, a cookie refresh answers without the token in its body,
the JSON form keeps working; and the API docs load no script from anywhere else."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from chainchat_testing.accounts import Accounts

pytestmark = pytest.mark.integration

COOKIE = "chainchat_refresh"


def _set_cookie(resp: httpx.Response) -> tuple[str, dict[str, Any]]:
    """The refresh cookie's value and attributes from the answer's Set-Cookie header."""
    headers = [v for k, v in resp.headers.multi_items() if k.lower() == "set-cookie" and v.startswith(COOKIE)]
    assert len(headers) == 1, resp.headers
    jar: SimpleCookie = SimpleCookie()
    jar.load(headers[0])
    morsel = jar[COOKIE]
    flags = {k.lower() for k in re.findall(r";\s*([A-Za-z-]+)", headers[0])}
    return morsel.value, {
        "path": morsel["path"],
        "samesite": morsel["samesite"],
        "httponly": "httponly" in flags,
        "secure": "secure" in flags,
        "max_age": morsel["max-age"],
    }


def _fresh_client(accounts: Accounts) -> httpx.Client:
    """A client that keeps no cookies of its own: every cookie in these tests is sent by hand."""
    return httpx.Client(base_url=str(accounts.http.base_url), timeout=20)


def test_login_sets_the_refresh_cookie_with_its_flags(accounts: Accounts) -> None:
    user = accounts.create_active("cookie")
    with _fresh_client(accounts) as http:
        resp = http.post("/auth/login", json={"email": user.email, "password": user.password})
    assert resp.status_code == 200
    value, attrs = _set_cookie(resp)
    assert value == resp.json()["refresh_token"]
    assert attrs["httponly"] is True
    assert attrs["samesite"].lower() == "strict"
    assert attrs["path"] == "/api/v1/auth"
    assert attrs["secure"] is False  # PUBLIC_URL is plain HTTP on 127.0.0.1 in the test stack
    assert int(attrs["max_age"]) > 0


def test_refresh_and_logout_by_cookie(accounts: Accounts) -> None:
    user = accounts.create_active("cookie-refresh")
    with _fresh_client(accounts) as http:
        login = http.post("/auth/login", json={"email": user.email, "password": user.password})
        first, _ = _set_cookie(login)
        http.cookies.clear()
        refreshed = http.post("/auth/refresh", headers={"Cookie": f"{COOKIE}={first}"})
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["refresh_token"] is None  # a script calling it learns no token
        second, _ = _set_cookie(refreshed)
        assert second != first
        me = http.get("/auth/me", headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
        assert me.json()["id"] == user.user_id

        http.cookies.clear()
        reused = http.post("/auth/refresh", headers={"Cookie": f"{COOKIE}={first}"})
        assert (reused.status_code, reused.json()["error"]["code"]) == (401, "refresh_token_reused")
        cleared = [v for k, v in reused.headers.multi_items() if k.lower() == "set-cookie"]
        assert any(v.startswith(f'{COOKIE}=""') or "Max-Age=0" in v for v in cleared), cleared

        login = http.post("/auth/login", json={"email": user.email, "password": user.password})
        third, _ = _set_cookie(login)
        http.cookies.clear()
        out = http.post("/auth/logout", headers={"Cookie": f"{COOKIE}={third}"})
        assert out.status_code == 204
        assert any("Max-Age=0" in v for k, v in out.headers.multi_items() if k.lower() == "set-cookie")
        http.cookies.clear()
        after = http.post("/auth/refresh", headers={"Cookie": f"{COOKIE}={third}"})
        assert (after.status_code, after.json()["error"]["code"]) == (401, "session_revoked")

        nothing = http.post("/auth/refresh")
        assert (nothing.status_code, nothing.json()["error"]["code"]) == (401, "missing_token")
        junk = http.post("/auth/refresh", headers={"Cookie": f"{COOKIE}=not a token"})
        assert junk.status_code == 401


def test_the_json_form_still_returns_the_token(accounts: Accounts) -> None:
    user = accounts.create_active("cookie-json")
    with _fresh_client(accounts) as http:
        body = http.post("/auth/refresh", json={"refresh_token": user.refresh_token}).json()
    assert isinstance(body["refresh_token"], str)
    assert body["refresh_token"] != user.refresh_token


def test_api_docs_load_no_third_party_script(accounts: Accounts) -> None:
    with httpx.Client(base_url=str(accounts.root.base_url), timeout=20) as http:
        page = http.get("/api/v1/docs")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp.split("script-src", 1)[1].split(";", 1)[0]
        scripts = re.findall(r"<script[^>]*src='([^']+)'", page.text)
        styles = re.findall(r"href='([^']+)'", page.text)
        assert scripts
        assert "<script>" not in page.text  # no inline script
        for src in scripts + styles:
            assert src.startswith("/api/v1/docs/"), src
            asset = http.get(src)
            assert asset.status_code == 200, src
        assert "SwaggerUIBundle" in http.get("/api/v1/docs/swagger-ui-bundle.js").text
        assert http.get("/api/v1/docs/../index.html").status_code == 404
