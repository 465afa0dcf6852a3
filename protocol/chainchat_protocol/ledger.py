"""Ledger domain schemas: NATS request/reply models, the ``anchored`` event, and their subjects.

Log entries normally reach the ledger over JetStream (``Subject.LEDGER_ENTRY``, via each service's
outbox); the request/reply API below is for callers that need an answer at once:

* ``ledger.append.v1``       entries → their leaf indexes (idempotent by ``(kind, id)``)
* ``ledger.proof.get.v1``    ``(kind, id)`` → :class:`~chainchat_protocol.proof.ProofObject`
  (inclusion proof to the latest anchored head covering the entry, or ``pending``)
* ``ledger.proof.batch.v1``  up to 200 ``(kind, id)`` → proofs, and the refs not in the log
* ``ledger.consistency.v1``  ``(from_size, to_size)`` → RFC 9162 consistency proof
* ``ledger.info.v1``         chain, contract, latest anchored head, backlog

Events: :class:`LedgerAnchored` on core NATS ``Subject.LEDGER_ANCHORED`` after each confirmed
anchor transaction, carrying the ids of the entries it newly covers, grouped by kind (gateways
forward ``message_ids`` to clients as the WebSocket ``anchored`` frame).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from chainchat_protocol.log_entry import HEX_SHA256_PATTERN, LogEntry, LogKind
from chainchat_protocol.proof import ConsistencyProof, ProofObject
from chainchat_protocol.rpc import Empty, Rpc

__all__ = [
    "ANCHORED_IDS_PER_EVENT",
    "ENTRY_ID_PATTERN",
    "LEDGER_APPEND",
    "LEDGER_CONSISTENCY",
    "LEDGER_INFO",
    "LEDGER_PROOF_BATCH",
    "LEDGER_PROOF_GET",
    "MAX_APPEND_ENTRIES",
    "MAX_ENTRY_BYTES",
    "MAX_PROOF_BATCH",
    "AnchoredHead",
    "AppendReply",
    "AppendRequest",
    "AppendResult",
    "ConsistencyRequest",
    "EntryId",
    "EntryRef",
    "LedgerAnchored",
    "LedgerErrorCode",
    "LedgerInfo",
    "ProofBatchReply",
    "ProofBatchRequest",
    "valid_entry_id",
]

# Entry ids are printable ASCII without spaces: they travel in NATS subjects' payloads, URLs and
# logs, and a control character or a look-alike Unicode id would make two entries hard to tell apart.
ENTRY_ID_PATTERN: Final = r"^[\x21-\x7e]{1,200}$"
EntryId = Annotated[str, StringConstraints(pattern=ENTRY_ID_PATTERN)]
MAX_APPEND_ENTRIES: Final = 1000
MAX_PROOF_BATCH: Final = 200
# A LogEntry is ~200 bytes of JSON; anything far larger on the stream is not one.
MAX_ENTRY_BYTES: Final = 4096
# An anchor can cover hundreds of thousands of entries after an outage; events are split so each
# stays far below NATS's max payload.
ANCHORED_IDS_PER_EVENT: Final = 2000

_ENTRY_ID_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F))


def valid_entry_id(value: str) -> bool:
    """True if ``value`` matches :data:`ENTRY_ID_PATTERN` (1-200 printable ASCII, no spaces)."""
    return 1 <= len(value) <= 200 and all(ch in _ENTRY_ID_CHARS for ch in value)


class LedgerErrorCode:
    """Stable error codes of the ledger API."""

    ENTRY_NOT_FOUND = "entry_not_found"
    ENTRY_CONFLICT = "entry_conflict"
    INVALID_ENTRY_ID = "invalid_entry_id"
    TREE_SIZE_OUT_OF_RANGE = "tree_size_out_of_range"
    NOT_ANCHORED = "not_anchored"
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    LEDGER_BUSY = "ledger_busy"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EntryRef(_Model):
    """Which entry: its kind and id (the ledger's unique key)."""

    kind: LogKind
    id: EntryId


class AppendRequest(_Model):
    """Append entries now. Entries already in the log (same kind and id) are not appended again."""

    entries: list[LogEntry] = Field(min_length=1, max_length=MAX_APPEND_ENTRIES)


class AppendResult(_Model):
    """Where one entry is in the log; ``duplicate`` when it was there before this request."""

    kind: LogKind
    id: str
    leaf_index: int = Field(ge=0)
    duplicate: bool


class AppendReply(_Model):
    results: list[AppendResult]
    tree_size: int = Field(ge=0)


class ProofBatchRequest(_Model):
    entries: list[EntryRef] = Field(min_length=1, max_length=MAX_PROOF_BATCH)


class ProofBatchReply(_Model):
    proofs: list[ProofObject]
    missing: list[EntryRef] = Field(default_factory=list)


class ConsistencyRequest(_Model):
    """RFC 9162 consistency between the tree of ``from_size`` leaves and that of ``to_size``
    (default: the latest anchored head)."""

    from_size: int = Field(ge=0)
    to_size: int | None = Field(default=None, ge=0)


class AnchoredHead(_Model):
    """A tree head anchored on chain (SPEC ``latest_head``)."""

    index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    root_hash: str = Field(pattern=HEX_SHA256_PATTERN)
    tx_hash: str = Field(pattern=r"^0x[0-9a-fA-F]{64}$")
    block_number: int = Field(ge=0)
    anchored_at: str | None = None


class LedgerInfo(_Model):
    """Body of ``GET /ledger/info``: the SPEC fields plus the local tree and the chain status."""

    chain_id: int
    contract_address: str | None = None
    rpc_url_public: str | None = None
    latest_head: AnchoredHead | None = None
    pending_leaves: int = Field(ge=0)
    tree_size: int = Field(ge=0)
    root_hash: str = Field(pattern=HEX_SHA256_PATTERN)
    chain_epoch: int = Field(ge=0, description="redeployments after chain resets so far")
    chain_status: Literal["ok", "unreachable", "unknown"] = "unknown"
    lost_anchors: int = Field(default=0, ge=0, description="anchors recorded on a lost chain")


class LedgerAnchored(_Model):
    """Event on ``Subject.LEDGER_ANCHORED``: head ``head_index`` now covers these entries.

    One anchor may be split over several events (``part`` of ``parts``) so each stays small; the
    head fields repeat in every part.
    """

    head_index: int = Field(ge=0)
    tree_size: int = Field(ge=1)
    root_hash: str = Field(pattern=HEX_SHA256_PATTERN)
    tx_hash: str
    block_number: int = Field(ge=0)
    chain_id: int
    contract_address: str
    message_ids: list[str] = Field(default_factory=list)
    file_ids: list[str] = Field(default_factory=list)
    key_ids: list[str] = Field(default_factory=list)
    audit_ids: list[str] = Field(default_factory=list)
    tombstone_ids: list[str] = Field(default_factory=list)
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)

    def ids_of(self, kind: LogKind) -> list[str]:
        """The entry ids of one kind covered by this event."""
        ids: list[str] = getattr(self, f"{kind}_ids")
        return ids


LEDGER_APPEND: Final[Rpc[AppendRequest, AppendReply]] = Rpc("ledger.append.v1", AppendRequest, AppendReply)
LEDGER_PROOF_GET: Final[Rpc[EntryRef, ProofObject]] = Rpc("ledger.proof.get.v1", EntryRef, ProofObject)
LEDGER_PROOF_BATCH: Final[Rpc[ProofBatchRequest, ProofBatchReply]] = Rpc(
    "ledger.proof.batch.v1", ProofBatchRequest, ProofBatchReply
)
LEDGER_CONSISTENCY: Final[Rpc[ConsistencyRequest, ConsistencyProof]] = Rpc(
    "ledger.consistency.v1", ConsistencyRequest, ConsistencyProof
)
LEDGER_INFO: Final[Rpc[Empty, LedgerInfo]] = Rpc("ledger.info.v1", Empty, LedgerInfo)
