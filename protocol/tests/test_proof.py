from typing import Any

import pytest
from pydantic import ValidationError

from chainchat_protocol import merkle
from chainchat_protocol.log_entry import LogEntry, leaf_hash
from chainchat_protocol.proof import (
    ConsistencyProof,
    ProofObject,
    hashes_to_hex,
    verify_consistency_offline,
    verify_proof_offline,
)
from chainchat_protocol.vectors import load


def _vector_proof() -> dict[str, Any]:
    proof: dict[str, Any] = load("log_entry")["proof"]
    return proof


def test_vector_proof_verifies_offline() -> None:
    proof = ProofObject.model_validate(_vector_proof())
    check = verify_proof_offline(proof)
    assert check.ok
    assert check.reason is None
    assert check.leaf_hash == leaf_hash(proof.entry).hex()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p: p["entry"].__setitem__("id", "key-3"),
        lambda p: p.__setitem__("leaf_index", 1),
        lambda p: p.__setitem__("tree_size", 4),
        lambda p: p.__setitem__("root_hash", "00" * 32),
        lambda p: p["inclusion_proof"].pop(),
        lambda p: p["inclusion_proof"].append("11" * 32),
    ],
)
def test_tampered_proofs_fail(tamper: Any) -> None:
    raw = _vector_proof()
    tamper(raw)
    check = verify_proof_offline(ProofObject.model_validate(raw))
    assert not check.ok
    assert check.reason


def test_pending_proofs() -> None:
    raw = _vector_proof()
    for key in ("head_index", "tx_hash", "block_number", "chain_id", "contract_address"):
        raw[key] = None
    raw["status"] = "pending"
    assert verify_proof_offline(ProofObject.model_validate(raw)).ok
    bare = ProofObject(status="pending", entry=LogEntry.model_validate(raw["entry"]))
    check = verify_proof_offline(bare)
    assert not check.ok
    assert check.reason == "entry not yet in the log"


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "pending"},  # chain fields present while pending
        {"tx_hash": None},  # anchored without tx
        {"root_hash": "0x" + "00" * 32},
        {"inclusion_proof": ["AB" * 32]},
        {"tx_hash": "00" * 32},
        {"contract_address": "0x1234"},
        {"leaf_index": -1},
        {"surprise": True},
    ],
)
def test_model_rejects(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ProofObject.model_validate({**_vector_proof(), **changes})


def test_pending_proof_of_an_entry_not_yet_received() -> None:
    proof = ProofObject.model_validate({"status": "pending", "entry": None})
    assert proof == ProofObject.not_yet_logged()
    assert verify_proof_offline(proof).reason == "entry not yet in the log"
    assert not verify_proof_offline(proof).ok
    with pytest.raises(ValidationError, match="may lack its entry"):
        ProofObject.model_validate({**_vector_proof(), "entry": None})
    pending_with_tree = {**_vector_proof(), "status": "pending", "entry": None}
    for key in ("head_index", "tx_hash", "block_number", "chain_id", "contract_address"):
        pending_with_tree[key] = None
    with pytest.raises(ValidationError, match="may lack its entry"):
        ProofObject.model_validate(pending_with_tree)


def test_partial_tree_fields_rejected() -> None:
    raw = {"status": "pending", "entry": _vector_proof()["entry"], "leaf_index": 3}
    with pytest.raises(ValidationError, match="all or none"):
        ProofObject.model_validate(raw)


def test_consistency_proof_object() -> None:
    tree = merkle.MerkleTree()
    tree.extend(bytes([i]) for i in range(20))
    body = ConsistencyProof(
        from_size=7, to_size=20, from_root=tree.root(7).hex(), to_root=tree.root(20).hex(),
        proof=hashes_to_hex(tree.consistency_proof(7, 20)),
    )  # fmt: skip
    assert verify_consistency_offline(body)
    assert not verify_consistency_offline(body.model_copy(update={"to_root": tree.root(19).hex()}))
