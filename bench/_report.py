"""Shared benchmark helper: writes ``results/<name>.json`` and ``results/<name>.png``."""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: benchmarks run in CI and over SSH
import matplotlib.pyplot as plt  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def environment() -> dict[str, Any]:
    """Where the numbers were measured."""
    return {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def bar_panels(name: str, panels: Sequence[tuple[str, str, dict[str, float]]]) -> Path:
    """One horizontal bar chart per ``(title, unit, {label: value})`` panel."""
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels)), squeeze=False)
    for ax, (title, unit, values) in zip(axes[:, 0], panels, strict=True):
        labels, numbers = list(values), list(values.values())
        bars = ax.barh(labels, numbers, color="#3b7dd8")
        ax.bar_label(bars, labels=[f"{v:,.1f}" for v in numbers], padding=3, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(unit)
        ax.invert_yaxis()
        ax.margins(x=0.2)
    fig.tight_layout()
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
