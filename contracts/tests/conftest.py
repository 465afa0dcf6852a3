"""Fixtures for the contract tests: a web3 connection to a real chain and a fresh deployment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chainchat_testing.contracts import Deploy, Web3, make_deployer
from devstack.components import Chain
from devstack.process import free_port


@pytest.fixture(scope="module")
def w3(chain: Chain) -> Web3:
    web3 = Web3(Web3.HTTPProvider(chain.rpc_url, request_kwargs={"timeout": 30}))
    assert web3.is_connected()
    return web3


@pytest.fixture(scope="module")
def accounts(w3: Web3) -> list[str]:
    # Account 0 is the ledger service's key in the shared stack; these tests use the others so
    # that they never race the service for nonces.
    return list(w3.eth.accounts[1:6])


@pytest.fixture(scope="module")
def deploy(w3: Web3, accounts: list[str]) -> Deploy:
    return make_deployer(w3, accounts[0])


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """A private Anvil node (the SPEC says Anvil must work too)."""
    node = Chain(Path(tmp_path_factory.mktemp("anvil")) / "chain", port=free_port(), kind="anvil")
    node.start()
    yield node
    node.stop()
