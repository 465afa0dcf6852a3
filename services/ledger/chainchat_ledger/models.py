"""The ledger's tables: leaves, tree nodes, the tree state, chain deployments and anchors.

Nodes are stored in chunks of :data:`NODES_PER_CHUNK` perfect-subtree hashes per row: a level
only grows at its end, so only its last chunk is ever rewritten, and re-opening a tree of a million
leaves reads about 8,000 rows instead of two million.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from chainchat_service.db import utcnow

NODES_PER_CHUNK = 256


def _when(nullable: bool = False) -> Any:
    """A timezone-aware timestamp column (PostgreSQL refuses aware values in naive columns)."""
    if nullable:
        return Field(default=None, sa_type=DateTime(timezone=True), nullable=True)
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), nullable=False)


class LeafRecord(SQLModel, table=True):
    """One log entry and its position; ``(kind, entry_id)`` is unique, so a re-published entry
    can never become a second leaf (the index leads with ``entry_id``: batches look ids up)."""

    __tablename__ = "ledger_leaf"
    __table_args__ = (UniqueConstraint("entry_id", "kind", name="uq_ledger_leaf_entry_kind"),)

    leaf_index: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    kind: str = Field(max_length=16)
    entry_id: str = Field(max_length=200)
    digest: str = Field(max_length=64)
    at: str = Field(max_length=40)
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    appended_at: datetime = _when()


class NodeChunk(SQLModel, table=True):
    """Up to NODES_PER_CHUNK consecutive node hashes of one tree level (32 bytes each)."""

    __tablename__ = "ledger_node_chunk"

    level: int = Field(primary_key=True)
    chunk: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TreeState(SQLModel, table=True):
    """The one row holding the committed tree size: every append moves it with a
    compare-and-set, so two writers can never both extend the same tree."""

    __tablename__ = "ledger_tree_state"

    id: int = Field(default=1, primary_key=True)
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False, default=0))
    root_hash: str = Field(max_length=64)
    updated_at: datetime = _when()


class ChainDeployment(SQLModel, table=True):
    """One contract the ledger anchors to. A chain reset ends an epoch (``lost_at`` set) and a
    new deployment starts the next one; old anchors stay recorded under their epoch."""

    __tablename__ = "ledger_chain"

    epoch: int = Field(primary_key=True)
    chain_id: int
    contract_address: str | None = Field(default=None, max_length=42)
    genesis_hash: str = Field(max_length=66)
    # a deployment in flight: its signed transaction, kept so a restart can finish it
    deploy_tx_hash: str | None = Field(default=None, max_length=66)
    deploy_raw_tx: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    deploy_nonce: int | None = None
    created_at: datetime = _when()
    lost_at: datetime | None = _when(nullable=True)
    lost_reason: str | None = Field(default=None, max_length=300)


class AnchorRecord(SQLModel, table=True):
    """One anchor transaction. Written as ``pending`` (with the signed bytes and nonce) before it
    is sent, so a restart re-broadcasts or confirms the very same transaction."""

    __tablename__ = "ledger_anchor"
    __table_args__ = (Index("ix_ledger_anchor_epoch_status", "epoch", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    epoch: int
    contract_address: str = Field(max_length=42)
    tree_size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root_hash: str = Field(max_length=64)
    tx_hash: str = Field(max_length=66, unique=True)
    nonce: int = Field(sa_type=BigInteger)
    raw_tx: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    # pending -> confirmed | failed (reverted) | dropped (never mined: nonce reused / chain reset)
    status: str = Field(default="pending", max_length=16)
    # True once its chain was reset: the anchor happened, on a chain that no longer exists
    lost: bool = False
    head_index: int | None = Field(default=None, sa_type=BigInteger)
    block_number: int | None = Field(default=None, sa_type=BigInteger)
    gas_used: int | None = Field(default=None, sa_type=BigInteger)
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _when()
    sent_at: datetime | None = _when(nullable=True)
    confirmed_at: datetime | None = _when(nullable=True)
