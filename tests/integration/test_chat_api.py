"""The chat API through the gateway on the real stack: conversations, members, bad input, access.

Every rejected send must answer the SPEC error and store nothing (``last_seq`` does not move).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.integration.chat_helpers import ChatUser, chat_user, seal

pytestmark = pytest.mark.integration


def code(resp: httpx.Response) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["code"]


@pytest.fixture(scope="module")
def trio(accounts: Any) -> tuple[ChatUser, ChatUser, ChatUser]:
    return chat_user(accounts, "ana"), chat_user(accounts, "bo"), chat_user(accounts, "cy")


def test_direct_conversation_once_per_pair_and_groups(accounts: Any, trio: Any) -> None:
    ana, bo, cy = trio
    http = accounts.http
    first = http.post("/conversations", json={"member_ids": [bo.id]}, headers=ana.headers)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["kind"] == "direct"
    assert sorted(body["members"]) == sorted([ana.id, bo.id])
    again = http.post("/conversations", json={"member_ids": [ana.id]}, headers=bo.headers)
    assert again.status_code == 200
    assert again.json()["conversation_id"] == body["conversation_id"]

    group = http.post("/conversations", json={"member_ids": [bo.id], "title": "plans"}, headers=ana.headers)
    assert group.status_code == 201
    gid = group.json()["conversation_id"]
    assert group.json()["admins"] == [ana.id]
    denied = http.post(f"/conversations/{gid}/members", json={"user_ids": [cy.id]}, headers=bo.headers)
    assert code(denied) == (403, "not_group_admin")
    added = http.post(f"/conversations/{gid}/members", json={"user_ids": [cy.id]}, headers=ana.headers)
    assert added.status_code == 200
    assert cy.id in added.json()["members"]
    left = http.delete(f"/conversations/{gid}/members/{cy.id}", headers=cy.headers)
    assert left.status_code == 204
    assert code(http.get(f"/conversations/{gid}", headers=cy.headers)) == (404, "conversation_not_found")

    unknown = http.post("/conversations", json={"member_ids": ["no-such-user"]}, headers=ana.headers)
    assert code(unknown) == (422, "unknown_users")
    alone = http.post("/conversations", json={"member_ids": [ana.id]}, headers=ana.headers)
    assert code(alone) == (422, "members_required")
    wrong = http.post("/conversations", json={"member_ids": "everyone"}, headers=ana.headers)
    assert code(wrong) == (422, "validation_error")
    listed = http.get("/conversations", headers=ana.headers).json()["conversations"]
    assert {c["conversation_id"] for c in listed} >= {body["conversation_id"], gid}


def test_bad_sends_get_the_spec_error_and_store_nothing(accounts: Any, trio: Any) -> None:
    ana, bo, cy = trio
    http = accounts.http
    cid = http.post("/conversations", json={"member_ids": [bo.id]}, headers=ana.headers).json()[
        "conversation_id"
    ]
    good = seal(ana, cid, [ana, bo])
    url = f"/conversations/{cid}/messages"
    cases: list[tuple[bytes, tuple[int, str]]] = [
        (b'{"envelope": ', (422, "validation_error")),
        (b"[]", (422, "validation_error")),
        (json.dumps({"envelope": "a string"}).encode(), (422, "invalid_envelope")),
        (json.dumps({"envelope": {**good, "suite": "aes-ecb"}}).encode(), (422, "unsupported_suite")),
        (json.dumps({"envelope": {**good, "recipients": []}}).encode(), (422, "invalid_envelope")),
        (json.dumps({"envelope": {**good, "signature": "!!"}}).encode(), (422, "invalid_envelope")),
        (json.dumps({"envelope": good, "file_ids": "x"}).encode(), (422, "validation_error")),
        (json.dumps({"envelope": seal(ana, cid, [ana])}).encode(), (422, "recipients_mismatch")),
        (json.dumps({"envelope": seal(ana, cid, [ana, bo, cy])}).encode(), (422, "recipients_mismatch")),
        (
            json.dumps({"envelope": seal(ana, "elsewhere", [ana, bo])}).encode(),
            (422, "conversation_mismatch"),
        ),
        (
            json.dumps({"envelope": {**good, "ciphertext": "A" * 90_000}}).encode(),
            (413, "envelope_too_large"),
        ),
    ]
    for body, expected in cases:
        resp = http.post(url, content=body, headers={**ana.headers, "Content-Type": "application/json"})
        assert code(resp) == expected, (expected, resp.text[:300])
    forged = seal(bo, cid, [ana, bo])  # bo's envelope, posted by ana
    assert code(http.post(url, json={"envelope": forged}, headers=ana.headers)) == (422, "sender_mismatch")
    assert code(http.post(url, json={"envelope": good}, headers=cy.headers)) == (
        404,
        "conversation_not_found",
    )
    history = http.get(url, headers=ana.headers)
    assert history.json() == {"messages": [], "has_more": False}
    assert http.get(f"/conversations/{cid}", headers=ana.headers).json()["last_seq"] == 0

    sent = http.post(url, json={"envelope": good, "client_id": "same"}, headers=ana.headers)
    retried = http.post(url, json={"envelope": good, "client_id": "same"}, headers=ana.headers)
    assert sent.status_code == retried.status_code == 201
    assert sent.json() == retried.json()
    assert sent.json()["seq"] == 1


def test_limits_unknown_ids_and_strangers(accounts: Any, trio: Any) -> None:
    ana, bo, cy = trio
    http = accounts.http
    cid = http.post("/conversations", json={"member_ids": [bo.id]}, headers=ana.headers).json()[
        "conversation_id"
    ]
    sent = http.post(
        f"/conversations/{cid}/messages", json={"envelope": seal(ana, cid, [ana, bo])}, headers=ana.headers
    )
    message_id = sent.json()["message_id"]
    for limit in ("0", "201", "many"):
        resp = http.get(f"/conversations/{cid}/messages", params={"limit": limit}, headers=ana.headers)
        assert code(resp) == (422, "validation_error")
    assert (
        code(http.get(f"/conversations/{cid}/messages", params={"after_seq": -1}, headers=ana.headers))[0]
        == 422
    )
    for path in ("/conversations/unknown-id", "/conversations/unknown-id/messages", "/conversations/%2e%2e"):
        assert http.get(path, headers=ana.headers).status_code == 404
    stranger = [
        http.get(f"/conversations/{cid}", headers=cy.headers),
        http.get(f"/conversations/{cid}/messages", headers=cy.headers),
        http.post(f"/conversations/{cid}/read", json={"seq": 1}, headers=cy.headers),
        http.post(f"/conversations/{cid}/members", json={"user_ids": [cy.id]}, headers=cy.headers),
        http.delete(f"/messages/{message_id}", headers=cy.headers),
        http.get(f"/messages/{message_id}/proof", headers=cy.headers),
    ]
    assert [r.status_code for r in stranger] == [404] * len(stranger)
    assert code(http.post(f"/conversations/{cid}/read", json={"seq": 9}, headers=bo.headers)) == (
        422, "seq_out_of_range",
    )  # fmt: skip
    assert code(http.delete("/messages/does-not-exist", headers=ana.headers)) == (404, "message_not_found")
    assert code(http.delete(f"/messages/{message_id}", headers=bo.headers)) == (403, "not_message_sender")
    assert http.get("/conversations").status_code == 401
    assert http.get(f"/conversations/{cid}", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_unread_counts_follow_read_positions(accounts: Any, trio: Any) -> None:
    ana, bo, _ = trio
    http = accounts.http
    gid = http.post(
        "/conversations", json={"member_ids": [bo.id], "title": "counts"}, headers=ana.headers
    ).json()["conversation_id"]
    for n in range(3):
        body = {"envelope": seal(ana, gid, [ana, bo], f"m{n}")}
        assert http.post(f"/conversations/{gid}/messages", json=body, headers=ana.headers).status_code == 201

    def summary(user: ChatUser) -> dict[str, Any]:
        convs = http.get("/conversations", headers=user.headers).json()["conversations"]
        return next(c for c in convs if c["conversation_id"] == gid)

    assert (summary(bo)["last_seq"], summary(bo)["unread_count"], summary(ana)["unread_count"]) == (3, 3, 0)
    read = http.post(f"/conversations/{gid}/read", json={"seq": 2}, headers=bo.headers)
    assert read.json() == {"conversation_id": gid, "seq": 2, "unread_count": 1}
    assert http.post(f"/conversations/{gid}/read", json={"seq": 1}, headers=bo.headers).json()["seq"] == 2
    assert summary(bo)["unread_count"] == 1
