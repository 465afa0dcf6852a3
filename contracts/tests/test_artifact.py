"""The committed ABI + bytecode must be what the Solidity source compiles to today."""

from __future__ import annotations

import json

from chainchat_protocol.abi import ledger_artifact
from contracts import build


def test_source_hash_matches_committed_artifact() -> None:
    # Cheap check first: any change to the .sol, an imported OpenZeppelin file, the settings or
    # the solc version changes the hash. Fix with `make contracts`.
    assert build.artifact_is_fresh(), "ChainChatLedger.json is stale: run `make contracts`"


def test_recompiled_bytecode_equals_committed() -> None:
    fresh = build.build_ledger_artifact()
    committed = json.loads(build.LEDGER_ARTIFACT.read_text())
    assert fresh["bytecode"] == committed["bytecode"], "stale bytecode: run `make contracts`"
    assert fresh["deployedBytecode"] == committed["deployedBytecode"]
    assert fresh["abi"] == committed["abi"]
    assert committed["settings"]["evmVersion"] == "shanghai"  # newest that Ganache 7.9 runs


def test_abi_has_exactly_the_spec_interface() -> None:
    functions = {
        item["name"]: [i["type"] for i in item["inputs"]]
        for item in ledger_artifact()["abi"]
        if item["type"] == "function"
    }
    assert functions["anchor"] == ["uint64", "bytes32"]
    assert functions["headCount"] == []
    assert functions["head"] == ["uint256"]
    assert functions["latestHead"] == []
    assert functions["verifyInclusion"] == ["uint256", "uint64", "bytes32", "bytes32[]"]
    for role_fn in ("grantRole", "revokeRole", "renounceRole", "hasRole", "ANCHORER_ROLE"):
        assert role_fn in functions
    events = [i for i in ledger_artifact()["abi"] if i["type"] == "event" and i["name"] == "Anchored"]
    assert [i["type"] for i in events[0]["inputs"]] == ["uint256", "uint64", "bytes32", "uint256"]
