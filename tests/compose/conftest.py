"""The stack in Docker for tests/compose: built like `make compose-up`, on free host ports under a
project name of its own (so it runs beside a `make compose-up` stack), 3 chat and 2 gateway instances.
Removed with its volumes at the end of the session. Without a Docker engine the tests skip, except
under `make compose-test` / CI, where they fail and say why."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chainchat_testing.accounts import PASSWORD, Accounts, unique_email
from devstack.compose import ComposeError, bases_mode, ensure_engine
from devstack.process import free_port
from tests.compose._stack import SCALE, StackUnderTest

LOG_DIR = Path(__file__).resolve().parents[2] / "test-artifacts" / "compose"


def _required() -> bool:
    flags = (os.environ.get("CHAINCHAT_COMPOSE_REQUIRED", ""), os.environ.get("CI", ""))
    return any(flag.lower() in ("1", "true", "yes") for flag in flags)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    try:
        ensure_engine()
    except ComposeError as exc:
        message = f"the compose tests need a Docker engine: {exc}"
        if _required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def compose_stack(docker_engine: None) -> Iterator[StackUnderTest]:
    project = StackUnderTest(
        name=f"chainchat-test-{os.getpid()}",
        gateway_port=free_port(),
        mail_port=free_port(),
        local=bases_mode() == "local",
        # a busy 2-core machine: registrations in containers (argon2id, PostgreSQL) took over 5 s
        extra_env={"ANCHOR_INTERVAL_S": "1", "RPC_TIMEOUT_S": "30"},
    )
    project.chain_port = free_port()
    project.extra_env["CHAINCHAT_TEST_CHAIN_PORT"] = str(project.chain_port)
    project.build()
    try:
        project.up(SCALE, timeout=400)
        yield project
    finally:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        logs = project.run("logs", "--no-color", "--timestamps", capture=True, timeout=120, check=False)
        (LOG_DIR / f"{project.name}.log").write_text(logs.stdout + logs.stderr)
        project.down(volumes=True)


def _warm_up(stack: StackUnderTest, attempts: int = 10) -> None:
    """The first requests after a start (argon2, each database's first queries, the first SMTP
    connection) can outlast the gateway's RPC timeout on a busy machine: register a throwaway
    address (never verified, so it does not become the admin) until auth answers in time."""
    for _ in range(attempts):
        body = {"email": unique_email("warm-up"), "password": PASSWORD, "display_name": "Warm up"}
        reply = httpx.post(f"{stack.gateway_url}/api/v1/auth/register", json=body, timeout=30)
        if reply.status_code == 201:
            return
        time.sleep(3)
    pytest.fail(f"registration never answered 201 after the start: {reply.status_code} {reply.text[:300]}")


@pytest.fixture(scope="session")
def compose_accounts(compose_stack: StackUnderTest) -> Iterator[Accounts]:
    """Accounts through the edge and maildev's REST API; the first verified one is the admin."""
    _warm_up(compose_stack)
    helper = Accounts(compose_stack.gateway_url, compose_stack.mail_url)
    helper.admin_account()
    yield helper
    helper.close()
