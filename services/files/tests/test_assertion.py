"""The gateway's signed statement of the caller's identity (gateway → files HTTP)."""

from __future__ import annotations

from chainchat_protocol.files import ASSERTION_TTL_S, sign_internal_assertion, verify_internal_assertion

SECRET = "a-long-random-test-secret"
NOW = 1_800_000_000.0


def _sign(**overrides: object) -> str:
    args = {"method": "POST", "path": "/internal/files", "user_id": "alice", "conversation_id": "c1"}
    args.update(overrides)
    return sign_internal_assertion(SECRET, now=NOW, **args)  # type: ignore[arg-type]


def test_a_signed_assertion_verifies_for_exactly_its_request() -> None:
    token = _sign()
    assert verify_internal_assertion(SECRET, token, "POST", "/internal/files", "alice", "c1", now=NOW)
    assert verify_internal_assertion(SECRET, token, "post", "/internal/files", "alice", "c1", now=NOW + 30)
    for args in (
        ("GET", "/internal/files", "alice", "c1"),
        ("POST", "/internal/files/x", "alice", "c1"),
        ("POST", "/internal/files", "mallory", "c1"),
        ("POST", "/internal/files", "alice", "c2"),
    ):
        assert not verify_internal_assertion(SECRET, token, *args, now=NOW)


def test_expired_forged_or_malformed_assertions_fail() -> None:
    token = _sign()
    request = ("POST", "/internal/files", "alice", "c1")
    assert not verify_internal_assertion(SECRET, token, *request, now=NOW + ASSERTION_TTL_S + 1)
    assert not verify_internal_assertion("another-secret", token, *request, now=NOW)
    version, expires, nonce, mac = token.split(".")
    far = f"{version}.{int(expires) + 10_000}.{nonce}.{mac}"
    assert not verify_internal_assertion(SECRET, far, *request, now=NOW)
    for bad in ("", "v1", "v2.1.2.3", "v1.x.n.m", f"{version}.{expires}.{nonce}.{mac}x"):
        assert not verify_internal_assertion(SECRET, bad, *request, now=NOW)
