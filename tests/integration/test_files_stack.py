"""Files faults and limits on the real stack: the gateway and files processes, the IPFS node, chat.

IPFS outage and restart (no service restart), the size limit on a second files instance with a
1 MiB ``MAX_FILE_BYTES`` behind its own gateway, a client that goes away mid-upload, a tampered
store, and flat memory in both processes while 100 MiB go up and down.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest

from devstack.stack import ServiceProcess, Stack

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
SMALL_LIMIT = MIB


@pytest.fixture(scope="module")
def pair(running_stack: Stack, accounts: Any) -> Iterator[dict[str, Any]]:
    """Two active members of one conversation, with an HTTP client on the stack's gateway."""
    alice, bob = accounts.create_active("files-alice"), accounts.create_active("files-bob")
    with httpx.Client(base_url=f"{running_stack.gateway_url}/api/v1", timeout=120) as http:
        resp = http.post("/conversations", json={"member_ids": [bob.user_id]}, headers=alice.headers)
        assert resp.status_code in (200, 201), resp.text
        yield {"alice": alice, "bob": bob, "http": http, "conversation_id": resp.json()["conversation_id"]}


def _upload(
    pair: dict[str, Any], content: Any, *, base: str | None = None, length: int | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/octet-stream", **pair["alice"].headers}
    if length is not None:
        headers["Content-Length"] = str(length)
    url = f"{base}/api/v1/files" if base else "/files"
    return pair["http"].post(
        url, params={"conversation_id": pair["conversation_id"]}, content=content, headers=headers
    )


def _code(resp: httpx.Response) -> str:
    return str(resp.json()["error"]["code"])


def _files_db(stack: Stack) -> sqlite3.Connection:
    url = stack.services["files"][0].env["DATABASE_URL"]
    return sqlite3.connect(url.removeprefix("sqlite:///"))


def _file_count(stack: Stack) -> int:
    with _files_db(stack) as conn:
        return int(conn.execute("SELECT count(*) FROM file").fetchone()[0])


def _pins(stack: Stack) -> set[str]:
    return set(
        httpx.post(f"{stack.ipfs.api_url}/pin/ls", params={"type": "recursive"}, timeout=10).json()["Keys"]
    )


def test_ipfs_outage_is_503_and_recovers_without_restarting(
    running_stack: Stack, pair: dict[str, Any]
) -> None:
    before = _upload(pair, b"before the outage")
    assert before.status_code == 201, before.text
    file_id, count = before.json()["file_id"], _file_count(running_stack)
    files_pid = running_stack.services["files"][0].process.pid  # type: ignore[union-attr]
    running_stack.ipfs.stop()
    try:
        down = _upload(pair, os.urandom(300_000))
        assert (down.status_code, _code(down)) == (503, "ipfs_unavailable")
        assert _file_count(running_stack) == count
        read = pair["http"].get(f"/files/{file_id}", headers=pair["bob"].headers)
        assert (read.status_code, _code(read)) == (503, "ipfs_unavailable")
        ready = pair["http"].get("/readyz").json()
        assert ready["services"]["files"]["checks"]["ipfs"]["ok"] is False
    finally:
        running_stack.ipfs.start()
    deadline = time.monotonic() + 30
    while pair["http"].get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the stack did not become ready again"
        time.sleep(0.3)
    after = _upload(pair, b"after the outage")
    assert after.status_code == 201, after.text
    assert pair["http"].get(f"/files/{file_id}", headers=pair["bob"].headers).content == b"before the outage"
    assert running_stack.services["files"][0].process.pid == files_pid  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def small_gateway(running_stack: Stack) -> Iterator[str]:
    """A files instance with a 1 MiB limit and a gateway that streams to it."""
    files = running_stack.add_service("files", env={"MAX_FILE_BYTES": str(SMALL_LIMIT)})
    gateway = running_stack.add_service(
        "gateway", env={"FILES_HTTP_URL": files.url, "MAX_FILE_BYTES": str(SMALL_LIMIT)}
    )
    try:
        yield gateway.url
    finally:
        for name, svc in (("gateway", gateway), ("files", files)):
            svc.stop()
            running_stack.services[name].remove(svc)


def _chunked(total: int) -> Iterator[bytes]:
    block = os.urandom(64 * 1024)
    for offset in range(0, total, len(block)):
        yield block[: min(len(block), total - offset)]


def test_size_limit_exactly_and_one_byte_over(
    running_stack: Stack, pair: dict[str, Any], small_gateway: str
) -> None:
    exact = _upload(pair, os.urandom(SMALL_LIMIT), base=small_gateway)
    assert exact.status_code == 201, exact.text
    assert exact.json()["size"] == SMALL_LIMIT
    count, pins = _file_count(running_stack), _pins(running_stack)
    declared = _upload(pair, os.urandom(SMALL_LIMIT + 1), base=small_gateway)
    assert (declared.status_code, _code(declared)) == (413, "file_too_large")
    streamed = _upload(pair, _chunked(SMALL_LIMIT + 1), base=small_gateway)  # chunked: no Content-Length
    assert (streamed.status_code, _code(streamed)) == (413, "file_too_large")
    assert _file_count(running_stack) == count
    assert _pins(running_stack) == pins


def test_bad_requests(pair: dict[str, Any], accounts: Any) -> None:
    http, alice = pair["http"], pair["alice"]
    params = {"conversation_id": pair["conversation_id"]}
    wrong = http.post(
        "/files", params=params, content=b"x", headers={"Content-Type": "text/plain", **alice.headers}
    )
    assert (wrong.status_code, _code(wrong)) == (415, "unsupported_media_type")
    unknown = http.post(
        "/files", params={"conversation_id": "no-such-conversation"}, content=b"x",
        headers={"Content-Type": "application/octet-stream", **alice.headers},
    )  # fmt: skip
    assert (unknown.status_code, _code(unknown)) == (404, "conversation_not_found")
    outsider = accounts.create_active("files-outsider")
    denied = http.post(
        "/files",
        params=params,
        content=b"x",
        headers={"Content-Type": "application/octet-stream", **outsider.headers},
    )
    assert (denied.status_code, _code(denied)) == (404, "conversation_not_found")
    file_id = _upload(pair, b"0123456789").json()["file_id"]
    assert http.get(f"/files/{file_id}", headers=outsider.headers).status_code == 404
    assert http.get(f"/files/{file_id}").status_code == 401
    bad = http.get(f"/files/{file_id}", headers={"Range": "bytes=10-", **alice.headers})
    assert (bad.status_code, bad.headers["content-range"], _code(bad)) == (
        416,
        "bytes */10",
        "range_not_satisfiable",
    )
    part = http.get(f"/files/{file_id}", headers={"Range": "bytes=-3", **alice.headers})
    assert (part.status_code, part.content, part.headers["content-range"]) == (206, b"789", "bytes 7-9/10")


def test_client_gone_mid_upload_leaves_nothing(running_stack: Stack, pair: dict[str, Any]) -> None:
    count, pins = _file_count(running_stack), _pins(running_stack)
    port = int(running_stack.gateway_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            (
                f"POST /api/v1/files?conversation_id={pair['conversation_id']} HTTP/1.1\r\nHost: t\r\n"
                f"Authorization: {pair['alice'].headers['Authorization']}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {16 * MIB}\r\n\r\n"
            ).encode()
        )
        sock.sendall(os.urandom(4 * MIB))
        time.sleep(0.5)
    time.sleep(2)
    assert _file_count(running_stack) == count
    assert _pins(running_stack) == pins
    assert _upload(pair, b"still works").status_code == 201


def test_tampered_store_fails_the_download(running_stack: Stack, pair: dict[str, Any]) -> None:
    data = os.urandom(3 * MIB)
    body = _upload(pair, data).json()
    with _files_db(running_stack) as conn:
        conn.execute("UPDATE file SET sha256 = ? WHERE id = ?", ("f" * 64, body["file_id"]))
    received = 0
    with pytest.raises(httpx.HTTPError):  # noqa: PT012 - the failure comes while reading the body
        with pair["http"].stream("GET", f"/files/{body['file_id']}", headers=pair["bob"].headers) as resp:
            for chunk in resp.iter_raw():
                received += len(chunk)
    assert received < len(data)


def _peak_rss(pids: list[int], stop: threading.Event, peaks: dict[int, int]) -> None:
    procs = [psutil.Process(pid) for pid in pids]
    while not stop.wait(0.02):
        for proc in procs:
            peaks[proc.pid] = max(peaks.get(proc.pid, 0), proc.memory_info().rss)


def test_gateway_and_files_memory_stays_flat_for_100_mib(running_stack: Stack, pair: dict[str, Any]) -> None:
    services: list[ServiceProcess] = [
        running_stack.services["gateway"][0],
        running_stack.services["files"][0],
    ]
    pids = [s.process.pid for s in services if s.process and s.process.pid]
    baseline = {pid: psutil.Process(pid).memory_info().rss for pid in pids}
    peaks: dict[int, int] = dict(baseline)
    stop = threading.Event()
    sampler = threading.Thread(target=_peak_rss, args=(pids, stop, peaks), daemon=True)
    sampler.start()
    digest = hashlib.sha256()

    def body() -> Iterator[bytes]:
        for chunk in _chunked(100 * MIB):
            digest.update(chunk)
            yield chunk

    try:
        resp = _upload(pair, body(), length=100 * MIB)
        assert resp.status_code == 201, resp.text
        down = hashlib.sha256()
        with pair["http"].stream(
            "GET", f"/files/{resp.json()['file_id']}", headers=pair["bob"].headers
        ) as got:
            for chunk in got.iter_raw():
                down.update(chunk)
        assert down.hexdigest() == digest.hexdigest() == resp.json()["sha256"]
    finally:
        stop.set()
        sampler.join()
    for pid in pids:
        grown = (peaks[pid] - baseline[pid]) / MIB
        assert grown < 40, f"process {pid} grew by {grown:.1f} MiB moving 100 MiB"
