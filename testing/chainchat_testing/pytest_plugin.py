"""Session fixtures that start the real components (and the services) on free ports.

Components start lazily, the first time a test asks for one, and stop at the end of the session,
so ``make test`` runs beside ``make up``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.stack import Stack, free_ports


def private_stack(
    var_dir: Path,
    *,
    scale: dict[str, int] | None = None,
    database: str = "sqlite",
    extra_env: dict[str, str] | None = None,
) -> Stack:
    """A stack configured as the test fixtures configure theirs (free ports, ENVIRONMENT=test, fast
    anchoring, no developer .env), not started; for tests that need a private one, e.g. scaled or
    on PostgreSQL. The caller stops it."""
    return Stack(
        var_dir=var_dir,
        ports=free_ports(),
        environment="test",
        chain_kind=os.environ.get("CHAIN_KIND", "ganache"),
        scale=dict(scale or {}),
        database=database,
        extra_env={
            "ANCHOR_INTERVAL_S": "1",
            "LOG_LEVEL": "INFO",
            "CHAINCHAT_ENV_FILE": str(var_dir / "no-such.env"),
            **(extra_env or {}),
        },
    )


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack on free ports in a temporary directory; nothing started until asked for."""
    stack = private_stack(tmp_path_factory.mktemp("stack"))
    yield stack
    stack.stop()


def _component(name: str, attribute: str, doc: str) -> Any:
    """The session fixture ``name``: the dev stack's ``attribute`` component, started the first
    time a test asks for it."""

    def started(dev_stack: Stack) -> Any:
        component = getattr(dev_stack, attribute)
        if not component.alive():
            component.start()
        return component

    started.__doc__ = doc
    return pytest.fixture(scope="session", name=name)(started)


nats_server = _component("nats_server", "nats", "NATS with JetStream (``.url``, ``.client_url(user)``).")
chain = _component("chain", "chain", "The dev chain (``.rpc_url``, ``.dev_private_key``, ``.chain_id``).")
ipfs_node = _component("ipfs_node", "ipfs", "The IPFS node (``.api_url``).")
maildev = _component("maildev", "mail", "The mail catcher (``.web_url``; REST ``GET /api/email``).")


@pytest.fixture(scope="session")
def running_stack(dev_stack: Stack) -> Stack:
    """Every component and one instance of each of the five services, ready."""
    dev_stack.start_components()
    if not dev_stack.services:
        dev_stack.start_services()
    dev_stack.wait_ready(timeout=90)
    return dev_stack


@pytest.fixture(scope="session")
def gateway_url(running_stack: Stack) -> str:
    return running_stack.gateway_url


@pytest.fixture
def api(gateway_url: str) -> Iterator[httpx.Client]:
    """A plain HTTP client on the running gateway (tests act as a user would)."""
    with httpx.Client(base_url=gateway_url, timeout=15) as client:
        yield client
