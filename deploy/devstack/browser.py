"""Which Chromium the browser tests and benchmarks drive: Debian's, found and named in every log."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def chromium_version(executable: str | None = None) -> str:
    """What ``chromium --version`` prints. The browser is whatever Debian installs, so each test and
    benchmark log says which one ran (a behaviour change between versions is then visible)."""
    executable = executable or chromium_path()
    if executable is None:
        return "no Chromium installed"
    try:
        done = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{executable}: --version failed ({exc})"
    return done.stdout.strip() or done.stderr.strip() or f"{executable}: no version printed"
