"""Session fixtures that start the real components (and the services) on free ports.

Components start lazily, the first time a test asks for one, and stop at the end of the session,
so ``make test`` runs beside ``make up``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from devstack.components import Chain, IpfsNode, MailDev, NatsServer
from devstack.stack import Stack, free_ports

C = TypeVar("C", NatsServer, Chain, IpfsNode, MailDev)


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


def _started(component: C) -> C:
    """``component``, started if it is not running (the first fixture that asks starts it)."""
    if not component.alive():
        component.start()
    return component


@pytest.fixture(scope="session")
def nats_server(dev_stack: Stack) -> NatsServer:
    return _started(dev_stack.nats)


@pytest.fixture(scope="session")
def chain(dev_stack: Stack) -> Chain:
    return _started(dev_stack.chain)


@pytest.fixture(scope="session")
def ipfs_node(dev_stack: Stack) -> IpfsNode:
    return _started(dev_stack.ipfs)


@pytest.fixture(scope="session")
def maildev(dev_stack: Stack) -> MailDev:
    return _started(dev_stack.mail)


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
