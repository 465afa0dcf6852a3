"""Start, watch and stop one child process of the local stack."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

COLOURS = ["36", "33", "35", "32", "34", "31", "96", "93", "95", "92", "94"]


class LaunchError(RuntimeError):
    """A component could not start; the message is one line meant for a human."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def ensure_ports_free(name: str, ports: Sequence[int]) -> None:
    for port in ports:
        if port_in_use(port):
            raise LaunchError(f"{name}: port {port} on 127.0.0.1 is already in use")


class ManagedProcess:
    """A child in its own process group, its output teed to a log file (and the terminal)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        echo: bool = False,
        colour: str = "0",
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.echo = echo
        self.colour = colour
        self.proc: subprocess.Popen[bytes] | None = None
        self.tail: deque[str] = deque(maxlen=40)
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **(self.env or {})}
        self.proc = subprocess.Popen(  # noqa: S603 - argv built by us, no shell
            self.argv,
            cwd=self.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._pump, name=f"log-{self.name}", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc is not None
        assert self.proc.stdout is not None
        prefix = (
            f"\x1b[{self.colour}m{self.name:>8} |\x1b[0m " if sys.stdout.isatty() else f"{self.name:>8} | "
        )
        with open(self.log_path, "ab") as log:
            for raw in iter(self.proc.stdout.readline, b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", "replace").rstrip()
                self.tail.append(line)
                if self.echo:
                    _write_line(sys.stdout, prefix + line)
        self.proc.stdout.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, probe: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                time.sleep(0.2)  # let the reader catch the last lines
                if self._reader is not None:
                    self._reader.join(timeout=2)
                if self.proc is not None:
                    self.proc.wait(timeout=5)
                last = next((ln for ln in reversed(self.tail) if ln.strip()), "no output")
                raise LaunchError(f"{self.name} exited during start-up: {last[:300]}")
            with contextlib.suppress(Exception):
                if probe():
                    return
            time.sleep(0.1)
        self.stop()
        raise LaunchError(f"{self.name} did not become ready within {timeout:.0f}s (log: {self.log_path})")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # children that ignored SIGTERM but outlived the leader
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(timeout=2)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


_write_lock = threading.Lock()


def _write_line(stream: IO[str], line: str) -> None:
    with _write_lock, contextlib.suppress(OSError, ValueError):
        # a closed terminal or pipe must not kill the log pump (the log file still gets it)
        stream.write(line + "\n")
        stream.flush()
