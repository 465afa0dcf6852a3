"""Reading the gateway's answers in tests."""

from __future__ import annotations

from typing import Any


def error_code(resp: Any) -> str:
    """The SPEC error body's ``code`` (of an ``httpx.Response``)."""
    return str(resp.json()["error"]["code"])
