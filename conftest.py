"""Root conftest: the real-component fixtures live in chainchat_testing.pytest_plugin."""

from __future__ import annotations

pytest_plugins = ["chainchat_testing.pytest_plugin"]


def pytest_report_header() -> str:
    """Every run's log says which browser the browser tests drive (Debian's Chromium, as installed)."""
    from devstack.browser import chromium_version

    return f"browser: {chromium_version()}"
