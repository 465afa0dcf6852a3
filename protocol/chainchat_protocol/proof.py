"""Proof objects returned by the API (SPEC §6) and their offline (no-chain) verification.

Encoding choices:

* ``root_hash`` and every ``inclusion_proof`` element: 64 lowercase hex characters, no ``0x``
  (they are RFC 9162 values, not Ethereum data; CT tooling prints them this way).
* ``tx_hash``: ``0x`` + 64 hex, and ``contract_address``: ``0x`` + 40 hex (EIP-55 mixed case kept
  as given), as Ethereum JSON-RPC spells them.
* A ``pending`` proof is one whose entry is not yet covered by an anchored head: the chain fields
  are null, and the tree fields are null too if the ledger has not appended the entry yet; then
  ``entry`` is null as well when the ledger has not received it (the object exists, its owning
  service let the caller see it, and its entry is still on its way). An ``anchored`` proof has
  every field.

:func:`verify_proof_offline` checks what needs no chain: the entry hashes to the leaf and the
inclusion proof reaches ``root_hash`` at ``tree_size``. The caller then checks on chain that head
``head_index`` is ``(tree_size, root_hash)`` (or calls the contract's ``verifyInclusion``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from chainchat_protocol import merkle
from chainchat_protocol.log_entry import HEX_SHA256_PATTERN, LogEntry, leaf_hash

__all__ = [
    "ConsistencyProof",
    "OfflineCheck",
    "ProofObject",
    "hashes_from_hex",
    "hashes_to_hex",
    "verify_consistency_offline",
    "verify_proof_offline",
]

HexHash = Annotated[str, StringConstraints(pattern=HEX_SHA256_PATTERN)]


def hashes_to_hex(hashes: Sequence[bytes]) -> list[str]:
    """Encode 32-byte hashes as lowercase hex strings (the proof wire format)."""
    return [h.hex() for h in hashes]


def hashes_from_hex(values: Sequence[str]) -> list[bytes]:
    """Decode lowercase hex hashes (e.g. into ``bytes32[]`` for the contract)."""
    return [bytes.fromhex(v) for v in values]


class ProofObject(BaseModel):
    """The proof object of SPEC §6."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["pending", "anchored"]
    entry: LogEntry | None
    leaf_index: int | None = Field(default=None, ge=0)
    tree_size: int | None = Field(default=None, ge=1)
    root_hash: str | None = Field(default=None, pattern=HEX_SHA256_PATTERN)
    inclusion_proof: list[HexHash] | None = Field(default=None, max_length=64)
    head_index: int | None = Field(default=None, ge=0)
    tx_hash: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{64}$")
    block_number: int | None = Field(default=None, ge=0)
    chain_id: int | None = Field(default=None, ge=1)
    contract_address: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")

    @model_validator(mode="after")
    def _consistent_fields(self) -> ProofObject:
        tree = (self.leaf_index, self.tree_size, self.root_hash, self.inclusion_proof)
        chain = (
            self.head_index,
            self.tx_hash,
            self.block_number,
            self.chain_id,
            self.contract_address,
        )
        if any(v is None for v in tree) and any(v is not None for v in tree):
            raise ValueError("leaf_index, tree_size, root_hash, inclusion_proof: all or none")
        if self.status == "anchored" and any(v is None for v in (*tree, *chain)):
            raise ValueError("an anchored proof needs every tree and chain field")
        if self.status == "pending" and any(v is not None for v in chain):
            raise ValueError("a pending proof has no chain fields")
        if self.entry is None and (self.status != "pending" or self.leaf_index is not None):
            raise ValueError("only a pending proof without tree fields may lack its entry")
        return self

    @classmethod
    def not_yet_logged(cls) -> ProofObject:
        """The proof of an object that exists but whose entry the ledger has not received yet."""
        return cls(status="pending", entry=None)


@dataclass(frozen=True, slots=True)
class OfflineCheck:
    """Result of :func:`verify_proof_offline`. ``leaf_hash`` is always the entry's RFC 9162 leaf
    hash (hex); ``ok`` is True only if the inclusion proof reaches ``root_hash``."""

    ok: bool
    leaf_hash: str
    reason: str | None = None


def verify_proof_offline(proof: ProofObject) -> OfflineCheck:
    """Check a proof object without a chain: recompute the leaf hash from ``entry`` and run RFC 9162
    inclusion verification to ``root_hash``. A pending proof without tree fields is not ``ok``
    (and without its entry, ``leaf_hash`` is empty)."""
    if proof.entry is None:
        return OfflineCheck(False, "", "entry not yet in the log")
    lh = leaf_hash(proof.entry)
    if (
        proof.leaf_index is None
        or proof.tree_size is None
        or proof.root_hash is None
        or proof.inclusion_proof is None
    ):
        return OfflineCheck(False, lh.hex(), "entry not yet in the log")
    path = hashes_from_hex(proof.inclusion_proof)
    root = bytes.fromhex(proof.root_hash)
    if not merkle.verify_inclusion(proof.leaf_index, proof.tree_size, lh, path, root):
        return OfflineCheck(False, lh.hex(), "inclusion proof does not reach root_hash")
    return OfflineCheck(True, lh.hex())


class ConsistencyProof(BaseModel):
    """Body of ``GET /ledger/consistency``: RFC 9162 consistency proof between two tree heads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_size: int = Field(ge=0)
    to_size: int = Field(ge=0)
    from_root: HexHash
    to_root: HexHash
    proof: list[HexHash] = Field(max_length=128)


def verify_consistency_offline(proof: ConsistencyProof) -> bool:
    """RFC 9162 §2.1.4.2 verification of a :class:`ConsistencyProof`."""
    return merkle.verify_consistency(
        proof.from_size,
        proof.to_size,
        bytes.fromhex(proof.from_root),
        bytes.fromhex(proof.to_root),
        hashes_from_hex(proof.proof),
    )
