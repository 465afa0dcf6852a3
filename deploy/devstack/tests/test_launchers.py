"""Launcher behaviour a newcomer sees: clear one-line errors, no process left behind."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from devstack.components import NatsServer
from devstack.process import LaunchError, ManagedProcess, free_port


def test_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        nats_server = NatsServer(tmp_path / "nats", port=port, monitor_port=free_port())
        with pytest.raises(LaunchError) as err:
            nats_server.start()
    assert str(err.value) == f"nats: port {port} on 127.0.0.1 is already in use"


def test_component_that_dies_at_start_is_reported(tmp_path: Path) -> None:
    proc = ManagedProcess("broken", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"],
                          log_path=tmp_path / "broken.log")  # fmt: skip
    proc.start()
    with pytest.raises(LaunchError, match="broken exited during start-up: boom"):
        proc.wait_ready(lambda: False, timeout=10)


def test_stop_leaves_no_child_behind(tmp_path: Path) -> None:
    script = (
        "import subprocess,sys,time; subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
        "print('up', flush=True); time.sleep(60)"
    )
    proc = ManagedProcess("tree", [sys.executable, "-c", script], log_path=tmp_path / "tree.log")
    proc.start()
    proc.wait_ready(lambda: "up" in proc.tail, timeout=10)
    pgid = proc.pid
    assert pgid is not None
    proc.stop(timeout=5)
    deadline = time.monotonic() + 5  # orphans are reaped by init asynchronously
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.1)
    assert not _group_alive(pgid)


def _group_alive(pgid: int) -> bool:
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def test_nats_starts_and_stops_cleanly(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", port=free_port(), monitor_port=free_port())
    server.start()
    assert server.alive()
    server.stop()
    assert not server.alive()
    assert (tmp_path / "nats" / "jetstream").exists()
