"""Bad or huge input gets its 4xx through the whole stack, never a 5xx or unbounded work (SPEC §7):
history and conversation lists are paged to fit a bus reply, every JSON body has a cap, deep JSON
is 422, an absurd ``Range`` is 416, and starting conversations is rate limited."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from chainchat_protocol.envelope import MAX_ENVELOPE_BYTES, envelope_bytes
from chainchat_protocol.envelope import Envelope as EnvelopeModel
from devstack.stack import Stack
from tests.integration.chat_helpers import ChatUser, chat_user, seal

pytestmark = pytest.mark.integration

DEEP = b"[" * 60_000


def _big_text_envelope(sender: ChatUser, cid: str, members: list[ChatUser]) -> dict[str, Any]:
    """The largest text envelope under 64 KiB (the text is random so nothing compresses)."""
    size = 46_000
    while True:
        envelope = seal(sender, cid, members, os.urandom(size // 2).hex())
        if len(envelope_bytes(EnvelopeModel.model_validate(envelope))) <= MAX_ENVELOPE_BYTES:
            return envelope
        size -= 1000


def _read_all(http: httpx.Client, cid: str, user: ChatUser, **first: Any) -> tuple[list[int], int]:
    """Every seq, following ``has_more`` from ``first``'s direction; and how many pages it took."""
    seqs: list[int] = []
    params: dict[str, Any] = {"limit": 200, **first}
    pages = 0
    while True:
        resp = http.get(f"/conversations/{cid}/messages", params=params, headers=user.headers)
        assert resp.status_code == 200, resp.text[:300]
        body = resp.json()
        pages += 1
        got = [m["seq"] for m in body["messages"]]
        if "after_seq" in params:
            seqs += got
            params["after_seq"] = got[-1]
        else:
            seqs = got + seqs
            params["before_seq"] = got[0]
        if not body["has_more"]:
            return seqs, pages


def test_seventeen_large_envelopes_then_history_pages_for_every_member(accounts: Any) -> None:
    ana, bo = chat_user(accounts, "ana"), chat_user(accounts, "bo")
    http = accounts.http
    cid = http.post("/conversations", json={"member_ids": [bo.id]}, headers=ana.headers).json()[
        "conversation_id"
    ]
    for _ in range(17):
        body = {"envelope": _big_text_envelope(ana, cid, [ana, bo])}
        sent = http.post(f"/conversations/{cid}/messages", json=body, headers=ana.headers)
        assert sent.status_code == 201, sent.text[:300]
    for member in (ana, bo):
        latest = http.get(f"/conversations/{cid}/messages", params={"limit": 200}, headers=member.headers)
        assert latest.status_code == 200
        assert latest.json()["has_more"] is True
        assert 0 < len(latest.json()["messages"]) < 17
        forwards, pages = _read_all(http, cid, member, after_seq=0)
        assert forwards == list(range(1, 18))
        assert pages > 1
        backwards, _ = _read_all(http, cid, member)
        assert backwards == list(range(1, 18))


def test_conversation_list_pages_with_a_cursor(accounts: Any) -> None:
    owner = chat_user(accounts, "owner")
    others = [chat_user(accounts, f"peer{i}") for i in range(3)]
    http = accounts.http
    made = [
        http.post("/conversations", json={"member_ids": [o.id]}, headers=owner.headers).json() for o in others
    ]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        resp = http.get("/conversations", params=params, headers=owner.headers)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        seen += [c["conversation_id"] for c in body["conversations"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        params["cursor"] = body["next_cursor"]
    assert seen == [c["conversation_id"] for c in reversed(made)]
    bad = http.get("/conversations", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=owner.headers)
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_cursor")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/auth/login"),
        ("POST", "/auth/register"),
        ("POST", "/conversations"),
        ("POST", "/conversations/anything/messages"),
        ("PUT", "/keys/me"),
        ("POST", "/conversations/anything/read"),
    ],
)
def test_deep_json_is_422_on_every_route(accounts: Any, method: str, path: str) -> None:
    user = accounts.create_active("deep")
    resp = accounts.http.request(
        method, path, content=DEEP, headers={**user.headers, "Content-Type": "application/json"}
    )
    assert resp.status_code == 422, resp.text[:300]
    assert resp.json()["error"]["code"] == "validation_error"


def test_every_json_body_has_a_cap(accounts: Any) -> None:
    user = accounts.create_active("cap")
    http = accounts.http
    huge = b'{"email": "' + b"a" * 200_000 + b'"}'
    declared = http.post("/auth/login", content=huge, headers={"Content-Type": "application/json"})
    assert (declared.status_code, declared.json()["error"]["code"]) == (413, "body_too_large")

    def chunks() -> Any:
        for _ in range(200):
            yield b"a" * 1024

    streamed = http.post("/conversations", content=chunks(), headers=user.headers)
    assert (streamed.status_code, streamed.json()["error"]["code"]) == (413, "body_too_large")
    envelope = http.post("/conversations/anything/messages", content=b"x" * 80_000, headers=user.headers)
    assert (envelope.status_code, envelope.json()["error"]["code"]) == (413, "envelope_too_large")
    fine = http.post("/auth/login", json={"email": "x@example.test", "password": "not the password"})
    assert fine.status_code == 401


def test_absurd_range_is_416(running_stack: Stack, accounts: Any) -> None:
    owner = chat_user(accounts, "ranger")
    http = accounts.http
    cid = http.post(
        "/conversations", json={"member_ids": [accounts.admin.user_id]}, headers=owner.headers
    ).json()["conversation_id"]
    up = http.post(
        "/files", params={"conversation_id": cid}, content=os.urandom(1000),
        headers={**owner.headers, "Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert up.status_code == 201, up.text
    path = f"/files/{up.json()['file_id']}"
    for header, code in [
        ("bytes=" + "9" * 5000 + "-", "range_not_satisfiable"),
        ("bytes=x-" + "1" * 5000, "invalid_range"),
        ("bytes=" + "7" * 5000 + "-1", "invalid_range"),
    ]:
        resp = http.get(path, headers={**owner.headers, "Range": header})
        assert resp.status_code == 416, (header[:20], resp.text[:200])
        assert resp.json()["error"]["code"] == code
        assert resp.headers["Content-Range"] == "bytes */1000"
    tail = http.get(path, headers={**owner.headers, "Range": "bytes=990-" + "9" * 5000})
    assert (tail.status_code, len(tail.content)) == (206, 10)


def test_starting_conversations_is_rate_limited(accounts: Any) -> None:
    """30 new conversations a minute per user (CHAT_RATE_CONVERSATION_CREATE), then 429."""
    user = chat_user(accounts, "starter")
    peer = accounts.create_active("peer")
    http = accounts.http
    statuses = []
    for n in range(31):
        body = {"member_ids": [peer.user_id], "title": f"group {n}"}
        statuses.append(http.post("/conversations", json=body, headers=user.headers))
    assert [r.status_code for r in statuses[:30]] == [201] * 30
    limited = statuses[30]
    assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    mine = http.get("/conversations", headers=user.headers).json()
    assert len(mine["conversations"]) == 30
