"""Accounts on the shared test stack (helpers: :mod:`chainchat_testing.accounts`): one admin per
session, created before any other account verifies, and a fresh approved member per test; and the
private environments of the files and ledger tests (:mod:`chainchat_testing.files`, ``.ledger``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from chainchat_testing.accounts import Account, Accounts, accounts_for
from chainchat_testing.files import FilesEnv, start_files_env
from chainchat_testing.ledger import IsolatedLedger
from devstack.components import MailDev
from devstack.stack import Stack

if TYPE_CHECKING:  # the browser harness imports Playwright: only the web modules pay for it
    from tests.integration.web_helpers import Web


@pytest.fixture(scope="session")
def accounts(running_stack: Stack, maildev: MailDev) -> Iterator[Accounts]:
    """Account helpers; the stack's admin is created first, before any other account verifies."""
    helper = accounts_for(running_stack, maildev)
    yield helper
    helper.close()


@pytest.fixture
def admin(accounts: Accounts) -> Account:
    """The stack's admin (the first account that verified its address), logged in."""
    return accounts.admin_account()


@pytest.fixture
def member(accounts: Accounts) -> Account:
    """A fresh approved member for one test."""
    return accounts.create_active("member")


@pytest.fixture(scope="module")
def files_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilesEnv]:
    """The files service and the gateway's files routes in-process, with their own NATS server and
    IPFS node (a test may stop them); one per test module."""
    with closing(start_files_env(tmp_path_factory.mktemp("files-env"))) as env:
        yield env


@pytest.fixture
def isolated(tmp_path: Path) -> Iterator[IsolatedLedger]:
    """NATS, a chain and ledger instances private to one test (fault tests kill and restart them);
    not started: the test starts what it needs."""
    ledger = IsolatedLedger(tmp_path / "stack")
    yield ledger
    ledger.stop()


@pytest.fixture(scope="module")
def web(running_stack: Stack, accounts: Accounts) -> Iterator[Web]:
    """The browser harness on the shared stack (Chromium via Playwright), one per web test module."""
    from tests.integration.web_helpers import web_harness

    yield from web_harness(running_stack, accounts)


@pytest.fixture
def web_guard(web: Web) -> Iterator[None]:
    """For the web modules (``pytest.mark.usefixtures("web_guard")``): a clean slate before each
    test; after it, its contexts closed, then console errors, page errors and foreign requests
    fail it."""
    from tests.integration.web_helpers import guarded_test

    yield from guarded_test(web)
