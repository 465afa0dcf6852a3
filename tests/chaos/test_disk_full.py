"""Disk full under one service's database: chat's SQLite file on a small tmpfs that we fill up.

What a user must see: a send refused with a clear SPEC error (503 ``storage_full``, never a 500,
never a stack trace), history still readable; and once space is freed, sends work again without a
restart, with nothing corrupted (integrity check, every acknowledged message once, seq gap-free).

Mounting needs root; a non-root run skips with the reason, except under CI (which runs as root).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.stack import Stack, free_ports
from tests.chaos._harness import history as read_history
from tests.chaos._report import record

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.timeout(300)]

TMPFS_SIZE = "12m"


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 12 MiB tmpfs mounted in the test's temp dir, always unmounted afterwards."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    if os.geteuid() != 0:
        if _ci():
            pytest.fail("the disk-full scenario must run under CI, which runs as root; got a non-root user")
        pytest.skip("mounting a small tmpfs needs root (run `make chaos` as root to simulate a full disk)")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs", str(mountpoint)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        reason = f"mount tmpfs failed: {result.stderr.strip() or result.returncode}"
        if _ci():
            pytest.fail(f"{reason} (under CI as root the disk-full scenario must run)")
        pytest.skip(f"{reason}; this container does not allow mounts")
    try:
        yield mountpoint
    finally:
        # the services are stopped by then (fixture order); lazy unmount if anything still holds it
        done = subprocess.run(["umount", str(mountpoint)], capture_output=True, check=False)  # noqa: S607
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(mountpoint)], check=False)  # noqa: S607


@pytest.fixture
def chat_on_small_disk(small_disk: Path, tmp_path: Path) -> Iterator[Stack]:
    """NATS, maildev and auth + chat + gateway, chat's database on the small disk (the chain,
    IPFS, files and ledger play no part in sending, so they stay off to keep this fast)."""
    stack = Stack(
        var_dir=tmp_path / "stack",
        ports=free_ports(),
        environment="test",
        extra_env={"LOG_LEVEL": "INFO", "CHAINCHAT_ENV_FILE": str(tmp_path / "no-such.env")},
    )
    try:
        stack.nats.start()
        stack.mail.start()
        stack.add_service("auth")
        stack.add_service("chat", env={"DATABASE_URL": f"sqlite:///{small_disk / 'chat.db'}"})
        stack.add_service("gateway")
        _wait_ready(stack, ("auth", "chat"))
        yield stack
    finally:
        stack.stop()


def _wait_ready(stack: Stack, names: tuple[str, ...], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    for name in names:
        url = f"{stack.services[name][0].url}/readyz"
        while httpx.get(url, timeout=5).status_code != 200:
            assert time.monotonic() < deadline, f"{name} not ready: {httpx.get(url, timeout=5).text}"
            time.sleep(0.25)


def fill(directory: Path) -> Path:
    """Write a ballast file until the filesystem says ENOSPC; return it (delete it to free space)."""
    ballast = directory / "ballast"
    chunk = b"\0" * 65536
    with open(ballast, "wb") as out:
        for _ in range(100_000):
            try:
                out.write(chunk)
                out.flush()
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return ballast
    raise AssertionError("the small disk never filled up")


def _free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def test_chat_refuses_sends_clearly_when_its_disk_is_full_and_recovers(
    chat_on_small_disk: Stack, small_disk: Path
) -> None:
    from chainchat_testing.accounts import Accounts
    from tests.integration.chat_helpers import chat_user, send_body

    stack = chat_on_small_disk
    accounts = Accounts(stack.gateway_url, stack.mail.web_url)
    http = accounts.http
    try:
        accounts.admin_account()
        a, b = chat_user(accounts, "full-a"), chat_user(accounts, "full-b")
        resp = http.post("/conversations", json={"member_ids": [b.id]}, headers=a.headers)
        assert resp.status_code == 201, resp.text
        cid = resp.json()["conversation_id"]
        acked: dict[str, str] = {}  # client_id -> message_id
        refusals: list[int] = []
        chat = stack.services["chat"][0]
        chat_pid = chat.process.pid if chat.process else None

        def send(body: dict[str, Any]) -> httpx.Response:
            resp = http.post(f"/conversations/{cid}/messages", json=body, headers=a.headers)
            if resp.status_code == 201:
                message_id = resp.json()["message_id"]
                assert acked.setdefault(body["client_id"], message_id) == message_id  # a retry is one message
            else:
                refusals.append(resp.status_code)
            return resp

        for n in range(10):
            assert send(send_body(a, cid, [a, b], f"before {n}")).status_code == 201

        ballast = fill(small_disk)
        assert _free_bytes(small_disk) < 64 * 1024
        # the database may still have room in pages it already owns: send until the disk bites
        refused: httpx.Response | None = None
        refused_body: dict[str, Any] = {}
        for n in range(300):
            refused_body = send_body(a, cid, [a, b], f"while full {n}")
            resp = send(refused_body)
            if resp.status_code != 201:
                refused = resp
                break
        assert refused is not None, "300 sends fitted on a full disk: the scenario did not bite"
        assert refused.status_code == 503, refused.text
        assert refused.json() == {
            "error": {
                "code": "storage_full",
                "message": "the service's storage is full; nothing was saved, retry later",
            }
        }
        assert "Traceback" not in refused.text
        # a second refusal is just as clean, and reading history still works while full
        again = send(send_body(a, cid, [a, b], "still full"))
        assert again.status_code == 503, again.text
        assert again.json()["error"]["code"] == "storage_full"
        full_history = read_history(http, cid, b.headers)
        assert [m["message_id"] for m in full_history] == list(acked.values())

        # the operator frees space: the same send (same client_id) now goes through, no restart
        ballast.unlink()
        freed_at = time.monotonic()
        for _ in range(100):
            resp = send(refused_body)
            if resp.status_code == 201:
                break
            assert resp.status_code == 503, resp.text
            time.sleep(0.1)
        assert resp.status_code == 201, resp.text
        recover_s = time.monotonic() - freed_at
        for n in range(5):
            assert send(send_body(a, cid, [a, b], f"after {n}")).status_code == 201
        assert chat.alive()
        assert chat.process is not None
        assert chat.process.pid == chat_pid  # the same process: no restart was needed
        assert set(refusals) == {503}

        # nothing corrupted: integrity check, every acknowledged message once, seq gap-free
        history = read_history(http, cid, b.headers)
        ids = [m["message_id"] for m in history]
        assert len(ids) == len(set(ids)) == len(acked)
        assert set(ids) == set(acked.values())
        assert [m["seq"] for m in history] == list(range(1, len(acked) + 1))
        with sqlite3.connect(f"file:{small_disk / 'chat.db'}?mode=ro", uri=True) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        lost = len(set(acked.values()) - set(ids))
        record(
            "disk full: chat's SQLite database on a full 12 MiB tmpfs",
            f"{len(acked)} acknowledged sends, {len(refusals)} refused while full",
            len(acked),
            lost,
            len(ids) - len(set(ids)),
            recover_s,
            note=(
                "refused with 503 storage_full (no 500, no trace); history readable while full; "
                "integrity_check ok; seq gap-free; same chat process served again after space was freed"
            ),
        )
    finally:
        accounts.close()
