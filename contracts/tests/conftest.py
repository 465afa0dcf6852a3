"""Fixtures for the contract tests: a web3 connection to a real chain and a fresh deployment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract

from chainchat_protocol.abi import ledger_artifact
from devstack.components import Chain
from devstack.process import free_port

Deploy = Callable[[], Contract]


def make_deployer(w3: Web3, admin: str) -> Deploy:
    """A function that deploys a fresh ChainChatLedger with ``admin`` as admin and anchorer."""
    artifact = ledger_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])

    def deploy() -> Contract:
        tx_hash = factory.constructor(admin).transact({"from": admin})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        assert receipt["status"] == 1
        return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

    return deploy


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


def error_selector(signature: str) -> str:
    """Hex selector of a custom error, as it starts the revert data."""
    return "0x" + Web3.keccak(text=signature)[:4].hex().removeprefix("0x")


def revert_data(exc: BaseException) -> str:
    """The revert data web3 attached to a ContractCustomError (hex string)."""
    data: Any = getattr(exc, "data", None)
    return data if isinstance(data, str) else str(exc)
