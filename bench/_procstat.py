"""CPU seconds of the stack's processes (from ``/proc``) and optional py-spy flame graphs.

On a shared machine the wall clock says little: another engineer's build halves a phase's
throughput. The CPU the services themselves burn per message does not depend on that, so every
phase reports it next to the rates.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # the command name (field 2) is in parentheses and may contain spaces: split after it
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


class CpuMeter:
    """CPU seconds each named process used between ``start()`` and ``stop()``."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self._before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> None:
        self._before = {name: cpu_seconds(pid) for name, pid in self.processes.items()}

    def stop(self) -> dict[str, float]:
        self.used = {
            name: round(cpu_seconds(pid) - self._before.get(name, 0.0), 3)
            for name, pid in self.processes.items()
        }
        return self.used


def py_spy() -> str | None:
    """The py-spy executable of this environment, if installed."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """One ``py-spy record`` per process for the length of a phase, written as SVG flame graphs.

    ``--gil`` samples only the thread holding the GIL: the graph shows where the CPU goes, not
    where the event loop or the SQLite thread waits."""

    def __init__(self, out_dir: Path, processes: dict[str, int], label: str) -> None:
        self.out_dir = out_dir
        self.processes = processes
        self.label = label
        self._running: list[subprocess.Popen[bytes]] = []

    def start(self, seconds: float) -> None:
        exe = py_spy()
        if exe is None:
            raise SystemExit("py-spy is not installed (uv sync installs the dev group)")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in self.processes.items():
            out = self.out_dir / f"{self.label}-{name}.svg"
            argv = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                    "--format", "flamegraph", "--output", str(out), "--nonblocking", "--gil"]  # fmt: skip
            self._running.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
            )

    def wait(self) -> list[Path]:
        for proc in self._running:
            proc.wait(timeout=120)
        self._running = []
        graphs = sorted(self.out_dir.glob(f"{self.label}-*.svg"))
        for graph in graphs:
            untitle(graph)
        return graphs


_TITLE = re.compile(r'(<text id="title"[^>]*>)[^<]*(</text>)')


def untitle(graph: Path) -> None:
    """py-spy titles a graph with its own command line: this machine's paths and a PID. Keep what
    the graph is instead (the file name says which phase and which service)."""
    text = graph.read_text("utf-8")
    title = f"py-spy record --rate 200 --nonblocking --gil: {graph.stem}"
    graph.write_text(_TITLE.sub(lambda m: m.group(1) + title + m.group(2), text, count=1), "utf-8")


def python_pids(named: Iterable[tuple[str, int | None]]) -> dict[str, int]:
    return {name: pid for name, pid in named if pid is not None}
