"""The shared test vectors, ``chainchat_protocol/vectors/*.json``: the Python tests and the web
client's tests read them to prove interoperability. Their generator is a tool
(``python -m tools.vectors --regenerate`` / ``--check``), since some vectors come from the SDK's
code and the protocol knows no client.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["VECTORS_DIR", "load", "names"]

VECTORS_DIR = Path(__file__).parent / "vectors"


def load(name: str) -> dict[str, Any]:
    """Parsed contents of ``vectors/<name>.json``."""
    data: dict[str, Any] = json.loads((VECTORS_DIR / f"{name}.json").read_text("utf-8"))
    return data


def names() -> list[str]:
    """The names of the committed vector files, sorted."""
    return sorted(path.stem for path in VECTORS_DIR.glob("*.json"))
