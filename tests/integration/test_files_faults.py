"""Faults and limits of the files service against a real IPFS node and real NATS: the size limit,
a client that goes away mid-upload, a tampered store, message deletions (reference counting),
bounded memory for 100 MiB, and the IPFS node going down and coming back.

Same in-process environment as ``test_files_service.py`` (``chainchat_testing.files``), with its
own IPFS node, so this module may stop it.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import psutil
import pytest

from chainchat_testing.files import MIB, FilesEnv, upload, wait_ready
from chainchat_testing.http import error_code

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------- size limit


def _chunks(total: int, piece: int = 64 * 1024) -> Iterator[bytes]:
    block = os.urandom(piece)
    sent = 0
    while sent < total:
        n = min(piece, total - sent)
        yield block[:n]
        sent += n


def test_exactly_the_limit_is_accepted(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    data = os.urandom(files_env.small_limit)
    with files_env.client("alice", small=True) as alice:
        resp = upload(alice, conv, data)
    assert resp.status_code == 201, resp.text
    assert resp.json()["size"] == files_env.small_limit


def test_declared_length_over_the_limit_is_413_at_once(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    files_before = files_env.db("SELECT count(*) FROM file")
    with files_env.client("alice", small=True) as alice:
        resp = upload(alice, conv, os.urandom(files_env.small_limit + 1))
    assert resp.status_code == 413
    assert error_code(resp) == "file_too_large"
    assert files_env.db("SELECT count(*) FROM file") == files_before


def test_streamed_body_over_the_limit_is_413_and_nothing_is_kept(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    files_before, pins_before = files_env.db("SELECT count(*) FROM file"), files_env.pins()
    with files_env.client("alice", small=True) as alice:
        # a generator body is sent chunked: no Content-Length, the limit is enforced while streaming
        resp = alice.post(
            "/files",
            params={"conversation_id": conv},
            content=_chunks(files_env.small_limit + 1),
            headers={"Content-Type": "application/octet-stream"},
        )
    assert resp.status_code == 413, resp.text
    assert error_code(resp) == "file_too_large"
    assert files_env.db("SELECT count(*) FROM file") == files_before
    assert files_env.pins() == pins_before


def test_client_disconnect_mid_upload_records_nothing(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    files_before, pins_before = files_env.db("SELECT count(*) FROM file"), files_env.pins()
    aborted_before = _metric(files_env.files.url, 'chainchat_files_uploads_total{outcome="aborted"}')
    with socket.create_connection(("127.0.0.1", files_env.gateway.port)) as sock:
        head = (
            f"POST /api/v1/files?conversation_id={conv} HTTP/1.1\r\nHost: test\r\n"
            "Authorization: Bearer user:alice\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {8 * MIB}\r\n\r\n"
        )
        sock.sendall(head.encode())
        sock.sendall(os.urandom(2 * MIB))
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while _metric(files_env.files.url, 'chainchat_files_uploads_total{outcome="aborted"}') <= aborted_before:
        assert time.monotonic() < deadline, "the files service never saw the aborted upload"
        time.sleep(0.1)
    assert files_env.db("SELECT count(*) FROM file") == files_before
    assert files_env.pins() == pins_before


def _metric(url: str, name: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


# ---------------------------------------------------------------- integrity


def test_tampered_sha256_aborts_the_download(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    data = os.urandom(2 * MIB)
    with files_env.client("alice") as alice:
        file_id = upload(alice, conv, data).json()["file_id"]
        files_env.db("UPDATE file SET sha256 = ? WHERE id = ?", "0" * 64, file_id)
        _assert_download_fails(alice, file_id, len(data))


def test_swapped_content_aborts_the_download(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    with files_env.client("alice") as alice:
        first = upload(alice, conv, os.urandom(MIB)).json()
        other = upload(alice, conv, os.urandom(MIB)).json()
        # the store now answers the record's CID with other bytes of the same size
        files_env.db("UPDATE file SET cid = ? WHERE id = ?", other["cid"], first["file_id"])
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


# ---------------------------------------------------------------- references and deletion


def _eventually(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_file_is_unpinned_when_its_last_message_is_deleted(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice", "bob")
    with files_env.client("alice") as alice:
        body = upload(alice, conv, os.urandom(300_000)).json()
        kept = upload(alice, conv, b"never sent in a message").json()
    file_id, cid = body["file_id"], body["cid"]
    files_env.loop.run(files_env.chat.post("m1", conv, "alice", [file_id]))
    files_env.loop.run(files_env.chat.post("m2", conv, "alice", [file_id]))
    _eventually(
        lambda: files_env.db("SELECT count(*) FROM file_reference WHERE file_id = ?", file_id) == [(2,)]
    )

    files_env.loop.run(files_env.chat.delete("m1", conv, [file_id]))
    files_env.loop.run(files_env.chat.delete("m1", conv, [file_id]))  # redelivered: must not count twice
    released = "SELECT count(*) FROM file_reference WHERE released_at IS NOT NULL AND file_id = ?"
    _eventually(lambda: files_env.db(released, file_id) == [(1,)])
    time.sleep(0.5)
    with files_env.client("bob") as bob:
        assert bob.get(f"/files/{file_id}").status_code == 200
        assert cid in files_env.pins()

        files_env.loop.run(files_env.chat.delete("m2", conv, [file_id]))
        _eventually(lambda: cid not in files_env.pins())
        resp = bob.get(f"/files/{file_id}")
        assert resp.status_code == 404
        assert bob.get(f"/files/{kept['file_id']}").status_code == 200  # never referenced: kept
    tombstone = files_env.published_entry(f"tombstone:{file_id}")
    assert (tombstone["kind"], tombstone["id"], tombstone["digest"]) == ("tombstone", file_id, body["sha256"])


def test_deletion_cannot_touch_another_conversations_file(files_env: FilesEnv) -> None:
    conv, other = files_env.conversation("alice"), files_env.conversation("mallory")
    with files_env.client("alice") as alice:
        body = upload(alice, conv, b"mine").json()
    files_env.loop.run(files_env.chat.delete("evil", other, [body["file_id"]]))
    time.sleep(1.0)
    with files_env.client("alice") as alice:
        assert alice.get(f"/files/{body['file_id']}").status_code == 200
    assert body["cid"] in files_env.pins()


# ---------------------------------------------------------------- bounded memory


class _PeakRss:
    """Samples this process's RSS (the servers run in it) every 20 ms in a thread."""

    def __init__(self) -> None:

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


def test_100_mib_round_trip_in_flat_memory(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    total, digest = 100 * MIB, hashlib.sha256()

    def body() -> Iterator[bytes]:
        for chunk in _chunks(total, 256 * 1024):
            digest.update(chunk)
            yield chunk

    with files_env.client("alice") as alice, _PeakRss() as rss:
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


def test_ipfs_down_then_back_without_restarting_the_service(files_env: FilesEnv) -> None:
    conv = files_env.conversation("alice")
    with files_env.client("alice") as alice:
        existing = upload(alice, conv, b"before the outage").json()
        files_before = files_env.db("SELECT count(*) FROM file")
        files_env.ipfs.stop()
        try:
            resp = upload(alice, conv, os.urandom(200_000))
            assert resp.status_code == 503
            assert error_code(resp) == "ipfs_unavailable"
            assert files_env.db("SELECT count(*) FROM file") == files_before
            down = alice.get(f"/files/{existing['file_id']}")
            assert down.status_code == 503
            assert error_code(down) == "ipfs_unavailable"
            readiness = wait_ready(files_env.files.url, ready=False)
            assert readiness["checks"]["ipfs"]["ok"] is False  # type: ignore[index]
        finally:
            files_env.ipfs.start()
        wait_ready(files_env.files.url, ready=True)
        again = upload(alice, conv, b"after the outage")
        assert again.status_code == 201, again.text
        assert alice.get(f"/files/{existing['file_id']}").content == b"before the outage"
