"""Access-token verification at the gateway: forgeries, expiry, audience, revocation, rotation."""

from __future__ import annotations

import base64
import json
import sqlite3
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chainchat_auth.vault import DEV_DATA_KEY, SecretVault, signing_key_context
from chainchat_protocol.b64 import b64d

pytestmark = pytest.mark.integration

# `accounts`, `admin`, `member` come from tests/integration/conftest.py


def _code(resp: Any) -> str:
    code: str = resp.json()["error"]["code"]
    return code


def _auth_signing_key(running_stack: Any) -> tuple[str, Ed25519PrivateKey]:
    """The auth service's current signing key, read from its database and unsealed with the data
    key the test stack runs with (tests only: an attacker with the database alone gets nothing)."""
    path = running_stack.var_dir / "auth.db"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        kid, raw = conn.execute(
            "SELECT kid, private_key FROM signing_key WHERE retired_at IS NULL ORDER BY created_at DESC"
        ).fetchone()
    assert raw.startswith("v1."), "the signing key is stored sealed"
    unsealed = SecretVault(DEV_DATA_KEY).open(raw, context=signing_key_context(kid))
    return kid, Ed25519PrivateKey.from_private_bytes(b64d(unsealed))


def _claims(member: Any, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": "chainchat-auth",
        "aud": "chainchat",
        "sub": member.user_id,
        "role": "admin",
        "sid": str(uuid.uuid4()),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _me(accounts: Any, token: str) -> Any:
    return accounts.http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})


def test_missing_or_malformed_bearer_is_401(accounts: Any) -> None:
    assert _code(accounts.http.get("/auth/me")) == "missing_token"
    for header in ("Basic abc", "Bearer", "Bearer not.a.jwt", "Bearer " + "a" * 5000):
        resp = accounts.http.get("/auth/me", headers={"Authorization": header})
        assert resp.status_code == 401, header


def test_token_signed_by_another_key_is_refused(accounts: Any, member: Any) -> None:
    stranger = Ed25519PrivateKey.generate()
    forged = jwt.encode(_claims(member), stranger, algorithm="EdDSA", headers={"kid": "made-up-kid"})
    assert (_me(accounts, forged).status_code, _code(_me(accounts, forged))) == (401, "invalid_token")
    real_kid = jwt.get_unverified_header(member.access_token)["kid"]
    forged_same_kid = jwt.encode(_claims(member), stranger, algorithm="EdDSA", headers={"kid": real_kid})
    assert _code(_me(accounts, forged_same_kid)) == "invalid_token"


def test_alg_none_and_hs256_with_public_key_are_refused(accounts: Any, member: Any) -> None:
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(_claims(member)).encode()).rstrip(b"=")
    unsigned = f"{header.decode()}.{payload.decode()}."
    assert _code(_me(accounts, unsigned)) == "invalid_token"
    hs = jwt.encode(_claims(member), "x" * 32, algorithm="HS256", headers={"kid": "k"})
    assert _code(_me(accounts, hs)) == "invalid_token"


def test_tampered_payload_is_refused(accounts: Any, member: Any) -> None:
    head, _, sig = member.access_token.split(".")
    claims = jwt.decode(member.access_token, options={"verify_signature": False})
    claims["role"] = "admin"
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert _code(_me(accounts, f"{head}.{body}.{sig}")) == "invalid_token"


def test_expired_wrong_audience_wrong_issuer_missing_claims(
    accounts: Any, member: Any, running_stack: Any
) -> None:
    kid, key = _auth_signing_key(running_stack)
    now = int(time.time())

    def sign(**overrides: Any) -> str:
        return jwt.encode(_claims(member, **overrides), key, algorithm="EdDSA", headers={"kid": kid})

    assert _me(accounts, sign()).status_code == 200  # the control: a correct token passes
    assert _code(_me(accounts, sign(iat=now - 2000, exp=now - 1000))) == "token_expired"
    assert _code(_me(accounts, sign(aud="someone-else"))) == "invalid_token"
    assert _code(_me(accounts, sign(iss="evil"))) == "invalid_token"
    assert _code(_me(accounts, sign(sid=None))) == "invalid_token"
    assert _code(_me(accounts, sign(role="superuser"))) == "invalid_token"


def test_member_token_cannot_use_admin_routes(accounts: Any, member: Any) -> None:
    resp = accounts.http.get("/admin/users", headers=member.headers)
    assert (resp.status_code, _code(resp)) == (403, "admin_required")


def test_signing_key_rotation_keeps_old_tokens_and_accepts_new(accounts: Any, admin: Any) -> None:
    user = accounts.create_active("rotate")
    old_kid = jwt.get_unverified_header(user.access_token)["kid"]
    resp = accounts.http.post("/admin/signing-keys/rotate", headers=admin.headers)
    assert resp.status_code == 200
    kids = [k["kid"] for k in resp.json()["keys"]]
    assert old_kid in kids
    assert len(kids) >= 2
    assert _me(accounts, user.access_token).status_code == 200
    deadline = time.monotonic() + 40  # each auth instance re-reads its key within 30 s
    while True:
        fresh = accounts.login(user)
        if jwt.get_unverified_header(fresh.access_token)["kid"] != old_kid:
            break
        assert time.monotonic() < deadline, "auth still signs with the retired key"
        time.sleep(1)
    assert _me(accounts, fresh.access_token).status_code == 200
    events = accounts.http.get("/admin/audit", params={"type": "signing_key_rotated"}, headers=admin.headers)
    assert events.json()["events"]
