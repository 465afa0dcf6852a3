"""Committed compiled contract artifacts (built by ``python -m contracts.build``).

The ledger service deploys and calls the contract with these; the SDK reads them to verify proofs
on chain. A test recompiles the Solidity source and fails when the artifact is stale.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, TypedDict, cast

__all__ = ["ContractArtifact", "ledger_abi", "ledger_artifact"]


class ContractArtifact(TypedDict):
    """The fields of a committed artifact that code relies on."""

    contractName: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployedBytecode: str
    sourceHash: str
    compiler: dict[str, str]
    settings: dict[str, Any]
    sources: dict[str, str]


@cache
def ledger_artifact() -> ContractArtifact:
    """The ``ChainChatLedger`` artifact: ABI, creation bytecode, compiler version, source hash."""
    text = resources.files(__name__).joinpath("ChainChatLedger.json").read_text(encoding="utf-8")
    return cast(ContractArtifact, json.loads(text))


def ledger_abi() -> list[dict[str, Any]]:
    """The ``ChainChatLedger`` ABI."""
    return ledger_artifact()["abi"]
