"""Reading and writing chain deployments and anchor records (no chain access here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import col, func, select, update

from chainchat_ledger.models import AnchorRecord, ChainDeployment
from chainchat_protocol.log_entry import format_timestamp
from chainchat_service.db import Database, utcnow


def _rfc3339(moment: datetime | None) -> str | None:
    # SQLite returns naive datetimes; every stored one is UTC
    if moment is None:
        return None
    return format_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class AnchoredHeadInfo:
    """The latest confirmed anchor of the live chain, with what a proof object needs."""

    head_index: int
    tree_size: int
    root_hash: str
    tx_hash: str
    block_number: int
    chain_id: int
    contract_address: str
    confirmed_at: str | None


class AnchorBook:
    """Deployments (one per chain epoch) and anchors, in the ledger database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def current_deployment(self) -> ChainDeployment | None:
        """The deployment of the newest epoch that has not been lost."""
        async with self.db.session() as session:
            result = await session.exec(
                select(ChainDeployment)
                .where(col(ChainDeployment.lost_at).is_(None))
                .order_by(col(ChainDeployment.epoch).desc())
                .limit(1)
            )
            return result.first()

    async def next_epoch(self) -> int:
        async with self.db.session() as session:
            result = await session.exec(select(func.max(ChainDeployment.epoch)))
            last = result.one()
            return 0 if last is None else int(last) + 1

    async def save_deployment(self, deployment: ChainDeployment) -> ChainDeployment:
        async with self.db.session() as session:
            merged = await session.merge(deployment)
            await session.commit()
            return merged

    async def delete_deployment(self, epoch: int) -> None:
        """Forget a deployment that never produced a contract (dropped or reverted)."""
        async with self.db.session() as session:
            row = await session.get(ChainDeployment, epoch)
            if row is not None and row.contract_address is None:
                await session.delete(row)
                await session.commit()

    async def mark_lost(self, deployment: ChainDeployment, reason: str) -> int:
        """End an epoch: the deployment and all its anchors are flagged as from a lost chain.
        The rows stay; nothing recorded is forgotten. Returns how many anchors were flagged."""
        async with self.db.session() as session:
            await session.exec(
                update(ChainDeployment)
                .where(col(ChainDeployment.epoch) == deployment.epoch)
                .values(lost_at=utcnow(), lost_reason=reason[:300])
            )
            await session.exec(
                update(AnchorRecord)
                .where(col(AnchorRecord.epoch) == deployment.epoch, col(AnchorRecord.status) == "pending")
                .values(status="dropped", error="chain reset before confirmation")
            )
            result = await session.exec(
                update(AnchorRecord).where(col(AnchorRecord.epoch) == deployment.epoch).values(lost=True)
            )
            await session.commit()
            return int(result.rowcount)

    async def pending(self, epoch: int) -> AnchorRecord | None:
        async with self.db.session() as session:
            result = await session.exec(
                select(AnchorRecord)
                .where(AnchorRecord.epoch == epoch, AnchorRecord.status == "pending")
                .order_by(col(AnchorRecord.id))
                .limit(1)
            )
            return result.first()

    async def add(self, record: AnchorRecord) -> AnchorRecord:
        async with self.db.session() as session:
            session.add(record)
            await session.commit()
            await session.refresh(record)
            return record

    async def save(self, record: AnchorRecord) -> None:
        async with self.db.session() as session:
            await session.merge(record)
            await session.commit()

    async def by_tx_hash(self, tx_hash: str) -> AnchorRecord | None:
        async with self.db.session() as session:
            result = await session.exec(select(AnchorRecord).where(AnchorRecord.tx_hash == tx_hash))
            return result.first()

    async def confirmed_count(self, epoch: int) -> int:
        """Heads this epoch's contract must hold at least: highest confirmed index + 1."""
        async with self.db.session() as session:
            result = await session.exec(
                select(func.max(AnchorRecord.head_index)).where(
                    AnchorRecord.epoch == epoch, AnchorRecord.status == "confirmed"
                )
            )
            last = result.one()
            return 0 if last is None else int(last) + 1

    async def latest_confirmed(self, epoch: int) -> AnchorRecord | None:
        async with self.db.session() as session:
            result = await session.exec(
                select(AnchorRecord)
                .where(AnchorRecord.epoch == epoch, AnchorRecord.status == "confirmed")
                .order_by(col(AnchorRecord.tree_size).desc())
                .limit(1)
            )
            return result.first()

    async def latest_head(self) -> AnchoredHeadInfo | None:
        """Latest confirmed anchor on the live chain (what proofs are built against)."""
        deployment = await self.current_deployment()
        if deployment is None or deployment.contract_address is None:
            return None
        record = await self.latest_confirmed(deployment.epoch)
        if record is None or record.head_index is None or record.block_number is None:
            return None
        return AnchoredHeadInfo(
            head_index=record.head_index,
            tree_size=record.tree_size,
            root_hash=record.root_hash,
            tx_hash=record.tx_hash,
            block_number=record.block_number,
            chain_id=deployment.chain_id,
            contract_address=record.contract_address,
            confirmed_at=_rfc3339(record.confirmed_at),
        )

    async def lost_count(self) -> int:
        async with self.db.session() as session:
            result = await session.exec(
                select(func.count()).select_from(AnchorRecord).where(col(AnchorRecord.lost).is_(True))
            )
            return int(result.one())
