"""Helpers for tests and benchmarks that talk to a deployed ChainChatLedger with sync web3."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

with warnings.catch_warnings():
    # web3 7 imports websockets.legacy, deprecated in websockets 14 (pytest turns it into an error)
    warnings.simplefilter("ignore", DeprecationWarning)
    from web3 import Web3
    from web3.contract import Contract

from chainchat_protocol.abi import ledger_artifact

Deploy = Callable[[], Contract]


def make_deployer(w3: Web3, admin: str) -> Deploy:
    """A function that deploys a fresh ChainChatLedger with ``admin`` as admin and anchorer
    (``admin`` must be an account the node unlocks, as Ganache's and Anvil's dev accounts are)."""
    artifact = ledger_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])

    def deploy() -> Contract:
        tx_hash = factory.constructor(admin).transact({"from": admin})
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        if receipt["status"] != 1:
            raise RuntimeError("ChainChatLedger deployment reverted")
        return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])

    return deploy


def error_selector(signature: str) -> str:
    """Hex selector of a custom error, as it starts the revert data."""
    return "0x" + Web3.keccak(text=signature)[:4].hex().removeprefix("0x")


def revert_data(exc: BaseException) -> str:
    """The revert data web3 attached to a ContractLogicError, as hex. Anvil gives the hex itself,
    Ganache a dict whose ``result`` holds it."""
    data: Any = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("result") or data.get("data")
    return data if isinstance(data, str) else str(exc)
