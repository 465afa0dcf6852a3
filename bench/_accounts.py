"""Accounts for benchmarks that run their own stack: sign up through the real mail flow."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from devstack.stack import Stack

PASSWORD = "bench-Passw0rd-long-enough"


def signup(http: httpx.Client, stack: Stack, prefix: str, admin: dict[str, Any] | None) -> dict[str, Any]:
    email = f"{prefix}-{uuid.uuid4().hex[:10]}@example.test"
    resp = http.post("/auth/register", json={"email": email, "password": PASSWORD, "display_name": prefix})
    resp.raise_for_status()
    user_id = resp.json()["user_id"]
    status = http.post("/auth/verify", json={"token": mail_token(stack, email)}).json()["status"]
    if status == "pending_approval" and admin is not None:
        headers = {"Authorization": f"Bearer {admin['token']}"}
        http.post(f"/admin/users/{user_id}/approve", headers=headers).raise_for_status()
    login = http.post("/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    return {"id": user_id, "email": email, "token": login.json()["access_token"]}


def mail_token(stack: Stack, email: str) -> str:
    for _ in range(150):
        for mail in httpx.get(f"{stack.mail.web_url}/api/email", timeout=10).json():
            if any(t.get("address") == email for t in mail.get("to", [])) and "token=" in mail.get(
                "text", ""
            ):
                return str(mail["text"].split("token=", 1)[1].split()[0].strip(").,"))
        time.sleep(0.2)
    raise RuntimeError(f"no verification mail for {email}")
