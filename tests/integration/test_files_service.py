"""The files service and the gateway's files routes against a real IPFS node and real NATS:
uploads, downloads, Range and conditional requests, access control, the NATS subjects.

The environment (``chainchat_testing.files.start_files_env``) runs its own NATS server and IPFS
node and serves the files service and a gateway with only the files routes in-process; the chat
service and the token check are doubles. Faults and limits: ``test_files_faults.py``; the real
stack: ``test_files_stack.py`` and ``test_files_e2e.py``.
"""

from __future__ import annotations

import hashlib
import os

import httpx
import nats
import pytest

from chainchat_protocol.files import FILE_ACCESS, FILE_GET, FileAccessRequest, FileGetRequest
from chainchat_protocol.rpc import RpcReply
from chainchat_testing.files import (
    MIB,
    FilesEnv,
    files_server,
    gateway_server,
    upload,
)
from chainchat_testing.http import error_code

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- upload and download


def test_upload_then_download_round_trip(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice", "bob")
    data = os.urandom(3 * MIB + 17)
    with files_env.client("alice") as alice, files_env.client("bob") as bob:
        resp = upload(alice, conv, data)
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert set(body) == {"file_id", "cid", "size", "sha256"}
        assert body["size"] == len(data)
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        assert body["cid"].startswith("b")  # CIDv1, base32

        got = bob.get(f"/files/{body['file_id']}")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["etag"] == f'"{body["sha256"]}"'
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["content-type"] == "application/octet-stream"
    assert body["cid"] in files_env.pins()


def test_upload_writes_the_file_log_entry_in_the_outbox(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    with files_env.client("alice") as alice:
        body = upload(alice, conv, b"log me").json()
    entry = files_env.published_entry(f"file:{body['file_id']}")
    assert entry["kind"] == "file"
    assert entry["id"] == body["file_id"]
    assert entry["digest"] == body["sha256"]
    rows = files_env.db(
        "SELECT uploader_id, conversation_id, cid, size FROM file WHERE id = ?", body["file_id"]
    )
    assert rows == [("alice", conv, body["cid"], 6)]


def test_empty_file(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    with files_env.client("alice") as alice:
        resp = upload(alice, conv, b"")
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["size"] == 0
        assert body["sha256"] == hashlib.sha256(b"").hexdigest()
        got = alice.get(f"/files/{body['file_id']}")
        assert got.status_code == 200
        assert got.content == b""
        assert got.headers["content-length"] == "0"
        ranged = alice.get(f"/files/{body['file_id']}", headers={"Range": "bytes=0-"})
        assert ranged.status_code == 416
        assert ranged.headers["content-range"] == "bytes */0"


# ---------------------------------------------------------------- ranges and conditional requests


@pytest.fixture(scope="module")
def stored(files_env: FilesEnv) -> tuple[str, bytes, str]:
    """A 1 MiB + 100 bytes file readable by alice: (file_id, data, conversation)."""
    conv = files_env.conversation("alice")
    data = os.urandom(MIB + 100)
    with files_env.client("alice") as alice:
        body = upload(alice, conv, data).json()
    return body["file_id"], data, conv


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, MIB + 99),
        ("bytes=-5", MIB + 95, MIB + 99),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=500000-99999999", 500000, MIB + 99),  # the end is clamped to the size
        ("bytes=0-", 0, MIB + 99),
    ],
)
def test_range_requests(
    files_env: FilesEnv, stored: tuple[str, bytes, str], header: str, start: int, end: int
) -> None:
    file_id, data, _ = stored
    with files_env.client("alice") as alice:
        resp = alice.get(f"/files/{file_id}", headers={"Range": header})
    assert resp.status_code == 206, resp.text
    assert resp.content == data[start : end + 1]
    assert resp.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert resp.headers["content-length"] == str(end - start + 1)


def test_two_halves_rebuild_the_file(files_env: FilesEnv, stored: tuple[str, bytes, str]) -> None:
    file_id, data, _ = stored
    half = len(data) // 2
    with files_env.client("alice") as alice:
        first = alice.get(f"/files/{file_id}", headers={"Range": f"bytes=0-{half - 1}"})
        second = alice.get(f"/files/{file_id}", headers={"Range": f"bytes={half}-"})
    assert (first.status_code, second.status_code) == (206, 206)
    assert first.content + second.content == data


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (f"bytes={MIB + 100}-", "range_not_satisfiable"),
        (f"bytes={10 * MIB}-{11 * MIB}", "range_not_satisfiable"),
        ("bytes=-0", "range_not_satisfiable"),
        ("bytes=abc", "invalid_range"),
        ("bytes=9-3", "invalid_range"),
        ("bytes=-", "invalid_range"),
        ("bytes=1-2-3", "invalid_range"),
    ],
)
def test_bad_ranges_get_416(
    files_env: FilesEnv, stored: tuple[str, bytes, str], header: str, code: str
) -> None:
    file_id, data, _ = stored
    with files_env.client("alice") as alice:
        resp = alice.get(f"/files/{file_id}", headers={"Range": header})
    assert resp.status_code == 416, resp.text
    assert resp.headers["content-range"] == f"bytes */{len(data)}"
    assert error_code(resp) == code


@pytest.mark.parametrize("header", ["items=0-5", "bytes=0-1,5-9"])
def test_ignored_ranges_serve_the_whole_file(
    files_env: FilesEnv, stored: tuple[str, bytes, str], header: str
) -> None:
    file_id, data, _ = stored
    with files_env.client("alice") as alice:
        resp = alice.get(f"/files/{file_id}", headers={"Range": header})
    assert resp.status_code == 200
    assert resp.content == data


def test_if_none_match_and_if_range(files_env: FilesEnv, stored: tuple[str, bytes, str]) -> None:
    file_id, data, _ = stored
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    with files_env.client("alice") as alice:
        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            resp = alice.get(f"/files/{file_id}", headers={"If-None-Match": header})
            assert resp.status_code == 304, header
            assert resp.content == b""
            assert resp.headers["etag"] == etag
        assert alice.get(f"/files/{file_id}", headers={"If-None-Match": '"other"'}).status_code == 200
        same = alice.get(f"/files/{file_id}", headers={"Range": "bytes=0-3", "If-Range": etag})
        assert same.status_code == 206
        assert same.content == data[:4]
        changed = alice.get(f"/files/{file_id}", headers={"Range": "bytes=0-3", "If-Range": '"old"'})
        assert changed.status_code == 200
        assert changed.content == data


# ---------------------------------------------------------------- bad input and access control


def test_wrong_content_type_is_415(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    with files_env.client("alice") as alice:
        for content_type in ("text/plain", "multipart/form-data; boundary=x", None):
            headers = {"Content-Type": content_type} if content_type else {}
            resp = alice.post("/files", params={"conversation_id": conv}, content=b"x", headers=headers)
            assert resp.status_code == 415, content_type
            assert error_code(resp) == "unsupported_media_type"


def test_missing_or_bad_token_is_401(files_env: FilesEnv, stored: tuple[str, bytes, str]) -> None:
    file_id, _, conv = stored
    with files_env.client(None) as anonymous:
        assert upload(anonymous, conv, b"x").status_code == 401
        assert anonymous.get(f"/files/{file_id}").status_code == 401
        bad = anonymous.get(f"/files/{file_id}", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401


def test_unknown_conversation_and_non_member_get_404(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    with files_env.client("mallory") as mallory:
        for target in (conv, "no-such-conversation"):
            resp = upload(mallory, target, b"secret")
            assert resp.status_code == 404
            assert error_code(resp) == "conversation_not_found"
        assert (
            mallory.post(
                "/files", content=b"x", headers={"Content-Type": "application/octet-stream"}
            ).status_code
            == 422
        )
        bad = upload(mallory, "bad id!", b"x")
        assert bad.status_code == 422


def test_only_current_members_download(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice", "bob")
    with files_env.client("alice") as alice:
        file_id = upload(alice, conv, b"members only").json()["file_id"]
    with files_env.client("mallory") as mallory:
        resp = mallory.get(f"/files/{file_id}")
        assert resp.status_code == 404
        assert error_code(resp) == "file_not_found"
        assert mallory.get("/files/0000000000000000000000000000dead").status_code == 404
    with files_env.client("bob") as bob:
        assert bob.get(f"/files/{file_id}").status_code == 200
        files_env.chat.members[conv].discard("bob")  # bob leaves the conversation
        assert bob.get(f"/files/{file_id}").status_code == 404


def test_internal_api_needs_a_caller(files_env: FilesEnv, stored: tuple[str, bytes, str]) -> None:
    file_id, _, _ = stored
    resp = httpx.get(f"{files_env.files.url}/internal/files/{file_id}")
    assert resp.status_code == 401
    assert error_code(resp) == "internal_auth_required"
    ok = httpx.get(
        f"{files_env.files.url}/internal/files/{file_id}", headers={"X-ChainChat-User-Id": "alice"}
    )
    assert ok.status_code == 200


# ---------------------------------------------------------------- NATS subjects


def test_signed_identity_when_a_secret_is_set(files_env: FilesEnv) -> None:
    secret = "a-test-secret-shared-by-gateway-and-files"
    files = files_server(
        files_env.db_path.parent,
        files_env.nats.client_url("files"),
        files_env.ipfs.api_url,
        MIB,
        secret=secret,
    )
    files_env.loop.run(files.start())
    good = gateway_server(files_env.nats.client_url("gateway"), files.url, MIB, secret=secret)
    forged = gateway_server(files_env.nats.client_url("gateway"), files.url, MIB, secret="not-the-secret")
    for server in (good, forged):
        files_env.loop.run(server.start())
    conv, auth = files_env.conversation("alice"), {"Authorization": "Bearer user:alice"}
    try:
        with httpx.Client(base_url=f"{good.url}/api/v1", headers=auth) as alice:
            body = upload(alice, conv, b"signed").json()
            assert alice.get(f"/files/{body['file_id']}").content == b"signed"
        # headers alone are not believed once a secret is configured, even from loopback
        direct = httpx.get(
            f"{files.url}/internal/files/{body['file_id']}", headers={"X-ChainChat-User-Id": "alice"}
        )
        assert (direct.status_code, error_code(direct)) == (401, "internal_auth_required")
        with httpx.Client(base_url=f"{forged.url}/api/v1", headers=auth) as mallory:
            refused = upload(mallory, conv, b"forged")
            assert (refused.status_code, error_code(refused)) == (503, "files_unavailable")
            read = mallory.get(f"/files/{body['file_id']}")
            assert (read.status_code, error_code(read)) == (503, "files_unavailable")
    finally:
        for server in (forged, good, files):
            files_env.loop.run(server.stop())


def _rpc(files_env: FilesEnv, subject: str, request: object) -> RpcReply:
    async def call() -> RpcReply:
        nc = await nats.connect(files_env.nats.client_url())
        try:
            msg = await nc.request(subject, request.model_dump_json().encode(), timeout=5)  # type: ignore[attr-defined]
            return RpcReply.model_validate_json(msg.data)
        finally:
            await nc.close()

    return files_env.loop.run(call())


def test_file_access_and_get_over_nats(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice", "bob")
    with files_env.client("alice") as alice:
        body = upload(alice, conv, b"proof me").json()
    ok = _rpc(files_env, FILE_ACCESS.subject, FileAccessRequest(user_id="bob", file_id=body["file_id"]))
    assert ok.data == {"file_id": body["file_id"], "conversation_id": conv}
    denied = _rpc(
        files_env, FILE_ACCESS.subject, FileAccessRequest(user_id="mallory", file_id=body["file_id"])
    )
    assert denied.error is not None
    assert (denied.error.status, denied.error.code) == (404, "file_not_found")
    record = _rpc(files_env, FILE_GET.subject, FileGetRequest(user_id="alice", file_id=body["file_id"]))
    assert record.data is not None
    assert record.data["cid"] == body["cid"]
    assert record.data["uploader_id"] == "alice"
    assert record.data["sha256"] == body["sha256"]
