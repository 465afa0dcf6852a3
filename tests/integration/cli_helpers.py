"""Drive the `chainchat` CLI as a user would: a subprocess per command, one config dir, a profile
per user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PASSWORD = "cli-correct-horse-battery-9"


class Cli:
    """Runs `chainchat` with one config dir; each user is a profile."""

    def __init__(self, config_dir: Path, server: str) -> None:
        self.config_dir = config_dir
        self.server = server

    def run(
        self,
        *args: str,
        profile: str | None = None,
        ok: bool = True,
        timeout: float = 120,
        password: str = PASSWORD,
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CHAINCHAT_CONFIG_DIR": str(self.config_dir), "CHAINCHAT_PASSWORD": password}
        cmd = [sys.executable, "-m", "chainchat.cli", *(["--profile", profile] if profile else []), *args]
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)
        if ok:
            assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def json(self, *args: str, profile: str | None = None) -> Any:
        return json.loads(self.run("--json", *args, profile=profile).stdout)
