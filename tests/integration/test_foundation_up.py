"""`chainchat-dev up` (what `make up` runs) as an operator sees it: banner, Ctrl-C, a dying component."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devstack.process import free_port
from devstack.stack import DEFAULT_PORTS

pytestmark = pytest.mark.integration


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(int(pid))
    return found


def _start_up(var_dir: Path) -> tuple[subprocess.Popen[str], dict[str, int], list[str]]:
    ports = {k: free_port() for k in DEFAULT_PORTS}
    env = {**os.environ, "CHAINCHAT_VAR": str(var_dir), "CHAINCHAT_ENV_FILE": str(var_dir / "none.env")}
    env.update({f"CHAINCHAT_PORT_{k.upper()}": str(v) for k, v in ports.items()})
    proc = subprocess.Popen(
        [sys.executable, "-m", "devstack.cli", "up"], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("Press Ctrl-C"):
            return proc, ports, lines
    proc.kill()
    raise AssertionError("stack did not come up:\n" + "\n".join(lines[-30:]))


def _drain(proc: subprocess.Popen[str], lines: list[str], timeout: float = 60) -> int:
    out, _ = proc.communicate(timeout=timeout)
    lines.extend(out.splitlines())
    return proc.returncode


def test_up_prints_urls_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    proc, ports, lines = _start_up(tmp_path)
    text = "\n".join(lines)
    assert f"http://127.0.0.1:{ports['gateway']}/" in text
    assert f"http://127.0.0.1:{ports['mail_web']}/" in text
    assert f"http://127.0.0.1:{ports['chain']}" in text
    ready = httpx.get(f"http://127.0.0.1:{ports['gateway']}/api/v1/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert _processes_mentioning(str(tmp_path))  # the components run with our data dir
    proc.send_signal(signal.SIGINT)
    assert _drain(proc, lines) == 0
    time.sleep(0.5)
    assert _processes_mentioning(str(tmp_path)) == []
    assert not (tmp_path / "stack.pid").exists()


def test_a_dying_component_stops_the_stack(tmp_path: Path) -> None:
    proc, _, lines = _start_up(tmp_path)
    victims = [p for p in _processes_mentioning(str(tmp_path / "mail")) if p != proc.pid]
    assert victims
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    assert _drain(proc, lines) == 1
    assert any("maildev exited" in line and "stopping the stack" in line for line in lines)
    time.sleep(0.5)
    assert _processes_mentioning(str(tmp_path)) == []


def test_a_closed_terminal_stops_the_stack_without_orphans(tmp_path: Path) -> None:
    proc, _, lines = _start_up(tmp_path)
    assert proc.stdout is not None
    proc.stdout.close()  # the reader of our output goes away (like `make up | head`)
    time.sleep(1)
    assert proc.poll() is None  # still supervising
    proc.send_signal(signal.SIGHUP)  # the terminal closes
    assert proc.wait(timeout=60) == 0
    time.sleep(0.5)
    assert _processes_mentioning(str(tmp_path)) == []
    assert lines
