"""Shared benchmark helper: writes ``results/<date>/<name>.json`` and ``results/<date>/<name>.png``.

The directory is ``$BENCH_RESULTS_DIR`` when set (``make bench`` sets it once for the whole run, so
a run that passes midnight stays in one directory), else ``results/<today, YYYY-MM-DD>``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: benchmarks run in CI and over SSH
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(
    os.environ.get("BENCH_RESULTS_DIR") or Path(__file__).parent / "results" / time.strftime("%Y-%m-%d")
)


def time_left() -> float:
    """Seconds until ``$BENCH_DEADLINE`` (a Unix time set by ``run_all`` from the benchmark's time
    limit, less a margin to stop and write): a benchmark skips what no longer fits and says so."""
    return float(os.environ.get("BENCH_DEADLINE", "inf")) - time.time()


def environment() -> dict[str, Any]:
    """Where the numbers were measured."""
    return {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _label(value: float) -> str:
    """1,234.5 for large values, three significant digits for small ones (0.131, not 0.1)."""
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"


def bar_panels(name: str, panels: Sequence[tuple[str, str, dict[str, float]]]) -> Path:
    """One horizontal bar chart per ``(title, unit, {label: value})`` panel."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)), squeeze=False)
    for ax, (title, unit, values) in zip(axes[:, 0], panels, strict=True):
        labels, numbers = list(values), list(values.values())
        bars = ax.barh(labels, numbers, color="#3b7dd8")
        ax.bar_label(bars, labels=[_label(v) for v in numbers], padding=3, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit)
        ax.invert_yaxis()
        ax.margins(x=0.2)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(name: str, data: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` (with the environment) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"env": environment(), **data}, indent=2) + "\n", "utf-8")
    return path
