"""`GET /users/{id}`: clients show peers by name without searching for them first."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_display_name_of_an_active_user(accounts: Any) -> None:
    alice = accounts.create_active(name="Alice Example")
    bob = accounts.create_active(name="Bob Example")
    resp = accounts.http.get(f"/users/{alice.user_id}", headers=bob.headers)
    assert resp.status_code == 200
    assert resp.json() == {"user_id": alice.user_id, "display_name": "Alice Example"}
    assert "email" not in resp.text


def test_unknown_or_malformed_user_is_404_and_login_required(accounts: Any) -> None:
    bob = accounts.create_active()
    for user_id in ("no-such-user", "bad id with spaces!"):
        resp = accounts.http.get(f"/users/{user_id}", headers=bob.headers)
        assert resp.status_code == 404
        assert resp.json()["error"]["code"] == "user_not_found"
    assert accounts.http.get(f"/users/{bob.user_id}").status_code == 401
