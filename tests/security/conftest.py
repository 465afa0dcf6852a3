"""The fuzz and security suite: shared fixtures, and the plaintext scan ordered last.

Accounts come from the shared helper (``chainchat_testing.accounts``: one admin per stack, whichever
folder asks first). ``test_no_plaintext`` scans every store of the session's stack for the canaries that the
end-to-end tests sent; it is moved to the end of the session so it sees their data too.
"""

from __future__ import annotations

import pytest

from chainchat_testing.accounts import Accounts, accounts_for
from devstack.components import MailDev
from devstack.stack import Stack

SCAN_LAST = "test_no_plaintext.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the at-rest scan after every other test of the session (stable order otherwise)."""
    last = [item for item in items if item.nodeid.split("::")[0].endswith(SCAN_LAST)]
    ids = {id(item) for item in last}
    items[:] = [item for item in items if id(item) not in ids] + last


@pytest.fixture(scope="session")
def accounts(running_stack: Stack, maildev: MailDev) -> Accounts:
    """The stack's account helper (shared with tests/integration: one admin per stack)."""
    return accounts_for(running_stack, maildev)
