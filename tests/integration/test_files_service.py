"""The files service and the gateway's files routes against a real IPFS node and real NATS.

This module runs its own NATS server and IPFS node (so it may stop them) and serves the files
service and a gateway carrying only the files routes in-process; the chat service and token
checks are doubles (``chainchat_files.testing``). Two files instances share one database: the
default one (100 MiB limit) and one with a 1 MiB limit behind its own gateway.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
import pytest

from chainchat_files.app import create_app
from chainchat_files.settings import FilesSettings
from chainchat_files.testing import AppServer, FakeChat, LoopThread, files_gateway_app
from chainchat_gateway.routes.files import FilesRouteSettings
from chainchat_gateway.settings import GatewaySettings
from chainchat_protocol.files import FILE_ACCESS, FILE_GET, FileAccessRequest, FileGetRequest
from chainchat_protocol.rpc import RpcReply
from devstack.components import IpfsNode, NatsServer
from devstack.process import free_port

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
SMALL_LIMIT = MIB


@dataclass
class FilesEnv:
    tmp: Path
    loop: LoopThread
    nats: NatsServer
    ipfs: IpfsNode
    chat: FakeChat
    files: AppServer
    gateway: AppServer
    small_files: AppServer
    small_gateway: AppServer
    db_path: Path

    def client(self, user: str | None, *, small: bool = False) -> httpx.Client:
        headers = {"Authorization": f"Bearer user:{user}"} if user else {}
        base = (self.small_gateway if small else self.gateway).url
        return httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=60)

    def conversation(self, *members: str) -> str:
        conversation_id = f"conv-{uuid.uuid4().hex[:12]}"
        self.chat.members[conversation_id] = set(members)
        return conversation_id

    def db(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            rows = conn.execute(sql, args).fetchall()
            conn.commit()
            return rows

    def pins(self) -> set[str]:
        resp = httpx.post(f"{self.ipfs.api_url}/pin/ls", params={"type": "recursive"}, timeout=10)
        return set(resp.json()["Keys"])


def _start_files(env_tmp: Path, nats_url: str, ipfs_url: str, limit: int) -> AppServer:
    port = free_port()
    settings = FilesSettings(
        environment="test",
        nats_url=nats_url,
        ipfs_api_url=ipfs_url,
        database_url=f"sqlite:///{env_tmp / 'files.db'}",
        max_file_bytes=limit,
        http_port=port,
        ipfs_gc_interval_s=0,
    )
    return AppServer(create_app(settings), port)


def _start_gateway(nats_url: str, files_url: str, limit: int) -> AppServer:
    port = free_port()
    settings = GatewaySettings(
        environment="test", nats_url=nats_url, files_http_url=files_url, http_port=port
    )
    return AppServer(files_gateway_app(settings, FilesRouteSettings(max_file_bytes=limit)), port)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilesEnv]:
    tmp = tmp_path_factory.mktemp("files-env")
    nats_server = NatsServer(tmp / "nats", port=free_port(), monitor_port=free_port())
    ipfs = IpfsNode(tmp / "ipfs", api_port=free_port(), gateway_port=free_port())
    nats_server.start()
    ipfs.start()
    loop = LoopThread()
    chat = FakeChat(nats_server.url)
    loop.run(chat.start())
    files = _start_files(tmp, nats_server.url, ipfs.api_url, 100 * MIB)
    loop.run(files.start())
    small_files = _start_files(tmp, nats_server.url, ipfs.api_url, SMALL_LIMIT)
    loop.run(small_files.start())
    gateway = _start_gateway(nats_server.url, files.url, 100 * MIB)
    small_gateway = _start_gateway(nats_server.url, small_files.url, SMALL_LIMIT)
    loop.run(gateway.start())
    loop.run(small_gateway.start())
    environment = FilesEnv(
        tmp, loop, nats_server, ipfs, chat, files, gateway, small_files, small_gateway, tmp / "files.db"
    )
    _wait_ready(files.url)
    try:
        yield environment
    finally:
        for server in (small_gateway, gateway, small_files, files):
            loop.run(server.stop())
        loop.run(chat.stop())
        loop.close()
        ipfs.stop()
        nats_server.stop()


def _wait_ready(url: str, ready: bool = True, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        resp = httpx.get(f"{url}/readyz", timeout=10)
        body = resp.json()
        if (resp.status_code == 200) is ready:
            return body
        time.sleep(0.2)
    raise AssertionError(f"readiness of {url} never became {ready}: {body}")


def _upload(client: httpx.Client, conversation_id: str, data: bytes) -> httpx.Response:
    return client.post(
        "/files",
        params={"conversation_id": conversation_id},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def _error_code(resp: httpx.Response) -> str:
    return str(resp.json()["error"]["code"])


# ---------------------------------------------------------------- upload and download


def test_upload_then_download_round_trip(env: FilesEnv) -> None:
    conv = env.conversation("alice", "bob")
    data = os.urandom(3 * MIB + 17)
    with env.client("alice") as alice, env.client("bob") as bob:
        resp = _upload(alice, conv, data)
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
    assert body["cid"] in env.pins()


def test_upload_writes_the_file_log_entry_in_the_outbox(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    with env.client("alice") as alice:
        body = _upload(alice, conv, b"log me").json()
    entry = _published_entry(env, f"file:{body['file_id']}")
    assert entry["kind"] == "file"
    assert entry["id"] == body["file_id"]
    assert entry["digest"] == body["sha256"]
    rows = env.db("SELECT uploader_id, conversation_id, cid, size FROM file WHERE id = ?", body["file_id"])
    assert rows == [("alice", conv, body["cid"], 6)]


def _published_entry(env: FilesEnv, msg_id: str, timeout: float = 10) -> dict[str, object]:
    """The outbox row ``msg_id`` once the relay has published it to JetStream."""
    import json

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = env.db("SELECT payload, published_at FROM outbox WHERE msg_id = ?", msg_id)
        if rows and rows[0][1] is not None:
            payload = rows[0][0]
            assert isinstance(payload, bytes)
            return dict(json.loads(payload))
        time.sleep(0.1)
    raise AssertionError(f"outbox row {msg_id} was not published")


def test_empty_file(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    with env.client("alice") as alice:
        resp = _upload(alice, conv, b"")
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
def stored(env: FilesEnv) -> tuple[str, bytes, str]:
    """A 1 MiB + 100 bytes file readable by alice: (file_id, data, conversation)."""
    conv = env.conversation("alice")
    data = os.urandom(MIB + 100)
    with env.client("alice") as alice:
        body = _upload(alice, conv, data).json()
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
    env: FilesEnv, stored: tuple[str, bytes, str], header: str, start: int, end: int
) -> None:
    file_id, data, _ = stored
    with env.client("alice") as alice:
        resp = alice.get(f"/files/{file_id}", headers={"Range": header})
    assert resp.status_code == 206, resp.text
    assert resp.content == data[start : end + 1]
    assert resp.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert resp.headers["content-length"] == str(end - start + 1)


def test_two_halves_rebuild_the_file(env: FilesEnv, stored: tuple[str, bytes, str]) -> None:
    file_id, data, _ = stored
    half = len(data) // 2
    with env.client("alice") as alice:
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
def test_bad_ranges_get_416(env: FilesEnv, stored: tuple[str, bytes, str], header: str, code: str) -> None:
    file_id, data, _ = stored
    with env.client("alice") as alice:
        resp = alice.get(f"/files/{file_id}", headers={"Range": header})
    assert resp.status_code == 416, resp.text
    assert resp.headers["content-range"] == f"bytes */{len(data)}"
    assert _error_code(resp) == code


@pytest.mark.parametrize("header", ["items=0-5", "bytes=0-1,5-9"])
def test_ignored_ranges_serve_the_whole_file(
    env: FilesEnv, stored: tuple[str, bytes, str], header: str
) -> None:
    file_id, data, _ = stored
    with env.client("alice") as alice:
        resp = alice.get(f"/files/{file_id}", headers={"Range": header})
    assert resp.status_code == 200
    assert resp.content == data


def test_if_none_match_and_if_range(env: FilesEnv, stored: tuple[str, bytes, str]) -> None:
    file_id, data, _ = stored
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    with env.client("alice") as alice:
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


def test_wrong_content_type_is_415(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    with env.client("alice") as alice:
        for content_type in ("text/plain", "multipart/form-data; boundary=x", None):
            headers = {"Content-Type": content_type} if content_type else {}
            resp = alice.post("/files", params={"conversation_id": conv}, content=b"x", headers=headers)
            assert resp.status_code == 415, content_type
            assert _error_code(resp) == "unsupported_media_type"


def test_missing_or_bad_token_is_401(env: FilesEnv, stored: tuple[str, bytes, str]) -> None:
    file_id, _, conv = stored
    with env.client(None) as anonymous:
        assert _upload(anonymous, conv, b"x").status_code == 401
        assert anonymous.get(f"/files/{file_id}").status_code == 401
        bad = anonymous.get(f"/files/{file_id}", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401


def test_unknown_conversation_and_non_member_get_404(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    with env.client("mallory") as mallory:
        for target in (conv, "no-such-conversation"):
            resp = _upload(mallory, target, b"secret")
            assert resp.status_code == 404
            assert _error_code(resp) == "conversation_not_found"
        assert (
            mallory.post(
                "/files", content=b"x", headers={"Content-Type": "application/octet-stream"}
            ).status_code
            == 422
        )
        bad = _upload(mallory, "bad id!", b"x")
        assert bad.status_code == 422


def test_only_current_members_download(env: FilesEnv) -> None:
    conv = env.conversation("alice", "bob")
    with env.client("alice") as alice:
        file_id = _upload(alice, conv, b"members only").json()["file_id"]
    with env.client("mallory") as mallory:
        resp = mallory.get(f"/files/{file_id}")
        assert resp.status_code == 404
        assert _error_code(resp) == "file_not_found"
        assert mallory.get("/files/0000000000000000000000000000dead").status_code == 404
    with env.client("bob") as bob:
        assert bob.get(f"/files/{file_id}").status_code == 200
        env.chat.members[conv].discard("bob")  # bob leaves the conversation
        assert bob.get(f"/files/{file_id}").status_code == 404


def test_internal_api_needs_a_caller(env: FilesEnv, stored: tuple[str, bytes, str]) -> None:
    file_id, _, _ = stored
    resp = httpx.get(f"{env.files.url}/internal/files/{file_id}")
    assert resp.status_code == 401
    assert _error_code(resp) == "internal_auth_required"
    ok = httpx.get(f"{env.files.url}/internal/files/{file_id}", headers={"X-ChainChat-User-Id": "alice"})
    assert ok.status_code == 200


# ---------------------------------------------------------------- size limit


def _chunks(total: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    block = os.urandom(piece)
    sent = 0
    while sent < total:
        n = min(piece, total - sent)
        yield block[:n]
        sent += n


def test_exactly_the_limit_is_accepted(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    data = os.urandom(SMALL_LIMIT)
    with env.client("alice", small=True) as alice:
        resp = _upload(alice, conv, data)
    assert resp.status_code == 201, resp.text
    assert resp.json()["size"] == SMALL_LIMIT


def test_declared_length_over_the_limit_is_413_at_once(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    files_before = env.db("SELECT count(*) FROM file")
    with env.client("alice", small=True) as alice:
        resp = _upload(alice, conv, os.urandom(SMALL_LIMIT + 1))
    assert resp.status_code == 413
    assert _error_code(resp) == "file_too_large"
    assert env.db("SELECT count(*) FROM file") == files_before


def test_streamed_body_over_the_limit_is_413_and_nothing_is_kept(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    files_before, pins_before = env.db("SELECT count(*) FROM file"), env.pins()
    with env.client("alice", small=True) as alice:
        # a generator body is sent chunked: no Content-Length, the limit is enforced while streaming
        resp = alice.post(
            "/files",
            params={"conversation_id": conv},
            content=_chunks(SMALL_LIMIT + 1),
            headers={"Content-Type": "application/octet-stream"},
        )
    assert resp.status_code == 413, resp.text
    assert _error_code(resp) == "file_too_large"
    assert env.db("SELECT count(*) FROM file") == files_before
    assert env.pins() == pins_before


def test_client_disconnect_mid_upload_records_nothing(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    files_before, pins_before = env.db("SELECT count(*) FROM file"), env.pins()
    aborted_before = _metric(env.files.url, 'chainchat_files_uploads_total{outcome="aborted"}')
    with socket.create_connection(("127.0.0.1", env.gateway.port)) as sock:
        head = (
            f"POST /api/v1/files?conversation_id={conv} HTTP/1.1\r\nHost: test\r\n"
            "Authorization: Bearer user:alice\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {8 * MIB}\r\n\r\n"
        )
        sock.sendall(head.encode())
        sock.sendall(os.urandom(2 * MIB))
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while _metric(env.files.url, 'chainchat_files_uploads_total{outcome="aborted"}') <= aborted_before:
        assert time.monotonic() < deadline, "the files service never saw the aborted upload"
        time.sleep(0.1)
    assert env.db("SELECT count(*) FROM file") == files_before
    assert env.pins() == pins_before


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


# ---------------------------------------------------------------- integrity


def test_tampered_sha256_aborts_the_download(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    data = os.urandom(2 * MIB)
    with env.client("alice") as alice:
        file_id = _upload(alice, conv, data).json()["file_id"]
        env.db("UPDATE file SET sha256 = ? WHERE id = ?", "0" * 64, file_id)
        _assert_download_fails(alice, file_id, len(data))


def test_swapped_content_aborts_the_download(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    with env.client("alice") as alice:
        first = _upload(alice, conv, os.urandom(MIB)).json()
        other = _upload(alice, conv, os.urandom(MIB)).json()
        # the store now answers the record's CID with other bytes of the same size
        env.db("UPDATE file SET cid = ? WHERE id = ?", other["cid"], first["file_id"])
        _assert_download_fails(alice, first["file_id"], MIB)
        assert alice.get(f"/files/{other['file_id']}").status_code == 200


def _assert_download_fails(client: httpx.Client, file_id: str, size: int) -> None:
    received: list[int] = []
    with pytest.raises(httpx.HTTPError):
        _read_into(client, f"/files/{file_id}", received)
    assert received[0] == 200  # headers were sent before the content could be checked
    assert sum(received[1:]) < size  # the last chunk is withheld: never a complete, valid-looking file


def _read_into(client: httpx.Client, url: str, received: list[int]) -> None:
    with client.stream("GET", url) as resp:
        received.append(resp.status_code)
        for chunk in resp.iter_raw():
            received.append(len(chunk))


# ---------------------------------------------------------------- NATS subjects


def _rpc(env: FilesEnv, subject: str, request: object) -> RpcReply:
    async def call() -> RpcReply:
        nc = await nats.connect(env.nats.url)
        try:
            msg = await nc.request(subject, request.model_dump_json().encode(), timeout=5)  # type: ignore[attr-defined]
            return RpcReply.model_validate_json(msg.data)
        finally:
            await nc.close()

    return env.loop.run(call())


def test_file_access_and_get_over_nats(env: FilesEnv) -> None:
    conv = env.conversation("alice", "bob")
    with env.client("alice") as alice:
        body = _upload(alice, conv, b"proof me").json()
    ok = _rpc(env, FILE_ACCESS.subject, FileAccessRequest(user_id="bob", file_id=body["file_id"]))
    assert ok.data == {"file_id": body["file_id"], "conversation_id": conv}
    denied = _rpc(env, FILE_ACCESS.subject, FileAccessRequest(user_id="mallory", file_id=body["file_id"]))
    assert denied.error is not None
    assert (denied.error.status, denied.error.code) == (404, "file_not_found")
    record = _rpc(env, FILE_GET.subject, FileGetRequest(user_id="alice", file_id=body["file_id"]))
    assert record.data is not None
    assert record.data["cid"] == body["cid"]
    assert record.data["uploader_id"] == "alice"
    assert record.data["sha256"] == body["sha256"]


# ---------------------------------------------------------------- references and deletion


def _eventually(check: object, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_file_is_unpinned_when_its_last_message_is_deleted(env: FilesEnv) -> None:
    conv = env.conversation("alice", "bob")
    with env.client("alice") as alice:
        body = _upload(alice, conv, os.urandom(300_000)).json()
        kept = _upload(alice, conv, b"never sent in a message").json()
    file_id, cid = body["file_id"], body["cid"]
    env.loop.run(env.chat.post("m1", conv, "alice", [file_id]))
    env.loop.run(env.chat.post("m2", conv, "alice", [file_id]))
    _eventually(lambda: env.db("SELECT count(*) FROM file_reference WHERE file_id = ?", file_id) == [(2,)])

    env.loop.run(env.chat.delete("m1", conv, [file_id]))
    env.loop.run(env.chat.delete("m1", conv, [file_id]))  # redelivered: must not count twice
    released = "SELECT count(*) FROM file_reference WHERE released_at IS NOT NULL AND file_id = ?"
    _eventually(lambda: env.db(released, file_id) == [(1,)])
    time.sleep(0.5)
    with env.client("bob") as bob:
        assert bob.get(f"/files/{file_id}").status_code == 200
        assert cid in env.pins()

        env.loop.run(env.chat.delete("m2", conv, [file_id]))
        _eventually(lambda: cid not in env.pins())
        resp = bob.get(f"/files/{file_id}")
        assert resp.status_code == 404
        assert bob.get(f"/files/{kept['file_id']}").status_code == 200  # never referenced: kept
    tombstone = _published_entry(env, f"tombstone:{file_id}")
    assert (tombstone["kind"], tombstone["id"], tombstone["digest"]) == ("tombstone", file_id, body["sha256"])


def test_deletion_cannot_touch_another_conversations_file(env: FilesEnv) -> None:
    conv, other = env.conversation("alice"), env.conversation("mallory")
    with env.client("alice") as alice:
        body = _upload(alice, conv, b"mine").json()
    env.loop.run(env.chat.delete("evil", other, [body["file_id"]]))
    time.sleep(1.0)
    with env.client("alice") as alice:
        assert alice.get(f"/files/{body['file_id']}").status_code == 200
    assert body["cid"] in env.pins()


# ---------------------------------------------------------------- bounded memory


class _PeakRss:
    """Samples this process's RSS (the servers run in it) every 20 ms in a thread."""

    def __init__(self) -> None:
        import threading

        import psutil

        self._proc = psutil.Process()
        self.baseline = self._proc.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def test_100_mib_round_trip_in_flat_memory(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    total, digest = 100 * MIB, hashlib.sha256()

    def body() -> Iterator[bytes]:
        for chunk in _chunks(total, 256 * 1024):
            digest.update(chunk)
            yield chunk

    with env.client("alice") as alice, _PeakRss() as rss:
        resp = alice.post(
            "/files",
            params={"conversation_id": conv},
            content=body(),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(total)},
        )
        assert resp.status_code == 201, resp.text
        assert resp.json()["sha256"] == digest.hexdigest()
        down = hashlib.sha256()
        with alice.stream("GET", f"/files/{resp.json()['file_id']}") as got:
            for chunk in got.iter_raw():
                down.update(chunk)
    assert down.hexdigest() == digest.hexdigest()
    grown = (rss.peak - rss.baseline) / MIB
    # gateway + files + client in this one process moved 200 MiB; none of it was held whole
    assert grown < 40, f"RSS grew by {grown:.1f} MiB"


# ---------------------------------------------------------------- IPFS outage (keep last: stops the node)


def test_ipfs_down_then_back_without_restarting_the_service(env: FilesEnv) -> None:
    conv = env.conversation("alice")
    with env.client("alice") as alice:
        existing = _upload(alice, conv, b"before the outage").json()
        files_before = env.db("SELECT count(*) FROM file")
        env.ipfs.stop()
        try:
            resp = _upload(alice, conv, os.urandom(200_000))
            assert resp.status_code == 503
            assert _error_code(resp) == "ipfs_unavailable"
            assert env.db("SELECT count(*) FROM file") == files_before
            down = alice.get(f"/files/{existing['file_id']}")
            assert down.status_code == 503
            assert _error_code(down) == "ipfs_unavailable"
            readiness = _wait_ready(env.files.url, ready=False)
            assert readiness["checks"]["ipfs"]["ok"] is False  # type: ignore[index]
        finally:
            env.ipfs.start()
        _wait_ready(env.files.url, ready=True)
        again = _upload(alice, conv, b"after the outage")
        assert again.status_code == 201, again.text
        assert alice.get(f"/files/{existing['file_id']}").content == b"before the outage"
