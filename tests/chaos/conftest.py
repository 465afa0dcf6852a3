"""One scaled stack (3 chat, 2 of every other service, PostgreSQL) shared by the scaled-topology test
and the service-level fault scenarios: started by the first test that asks for it, stopped as soon as
the run leaves those modules (so the rest of `make test` does not carry eleven idle services)."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from chainchat_testing.accounts import Accounts
from devstack.stack import Stack
from tests.chaos._harness import accounts_on, scaled_stack

SCALE = {"chat": 3, "gateway": 2, "ledger": 2, "files": 2, "auth": 2}
#: the modules that use the shared stack
SHARED_STACK_MODULES = ("test_scaled_topology.py", "test_service_faults.py")

_shared: dict[str, object] = {}


@pytest.fixture(scope="module")
def shared_scaled_stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """The shared scaled stack, started if it is not running (the hooks below stop it)."""
    if "stack" not in _shared:
        exits = ExitStack()
        _shared["stack"] = exits.enter_context(scaled_stack(tmp_path_factory.mktemp("scaled"), SCALE))
        _shared["exits"] = exits
    stack = _shared["stack"]
    assert isinstance(stack, Stack)
    return stack


@pytest.fixture(scope="module")
def shared_accounts(shared_scaled_stack: Stack) -> Accounts:
    """Account helpers on the shared stack; its admin (the first verified account) is made once."""
    if "accounts" not in _shared:
        accounts = accounts_on(shared_scaled_stack)
        _shared["accounts"] = accounts
        exits = _shared["exits"]
        assert isinstance(exits, ExitStack)
        exits.callback(accounts.close)
    accounts = _shared["accounts"]
    assert isinstance(accounts, Accounts)
    return accounts


def _stop_shared() -> None:
    exits = _shared.pop("exits", None)
    _shared.pop("stack", None)
    _shared.pop("accounts", None)
    if isinstance(exits, ExitStack):
        exits.close()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if "stack" not in _shared:
        return
    if nextitem is None or nextitem.path.name not in SHARED_STACK_MODULES:
        _stop_shared()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _stop_shared()  # also after an interrupted run
