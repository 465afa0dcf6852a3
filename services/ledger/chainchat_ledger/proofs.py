"""Answers to readers: proof objects (SPEC §6), consistency proofs, and the ledger's status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chainchat_ledger.anchors import AnchorBook, AnchoredHeadInfo
from chainchat_ledger.chain import ChainClient
from chainchat_ledger.log import TransparencyLog, leaf_record_to_entry
from chainchat_ledger.models import LeafRecord
from chainchat_ledger.settings import LedgerSettings
from chainchat_protocol.errors import NotFound, ValidationFailed
from chainchat_protocol.ledger import AnchoredHead, EntryRef, LedgerErrorCode, LedgerInfo
from chainchat_protocol.proof import ConsistencyProof, ProofObject, hashes_to_hex


@dataclass(eq=False)
class ProofService:
    settings: LedgerSettings
    tlog: TransparencyLog
    book: AnchorBook
    chain: ChainClient

    async def proof(self, ref: EntryRef) -> ProofObject:
        """Inclusion proof of one entry to the latest anchored head, or a pending proof."""
        row = await self.tlog.leaf(ref.kind, ref.id)
        if row is None:
            raise NotFound(f"no {ref.kind} entry {ref.id!r} in the log",
                           code=LedgerErrorCode.ENTRY_NOT_FOUND)  # fmt: skip
        head = await self.book.latest_head()
        await self._ensure_loaded(max(row.leaf_index + 1, head.tree_size if head else 0))
        return self._build(row, head)

    async def proofs(self, refs: Sequence[EntryRef]) -> tuple[list[ProofObject], list[EntryRef]]:
        """Proofs for several entries (one head for all of them) and the refs not in the log."""
        rows = await self.tlog.leaves([(r.kind, r.id) for r in refs])
        head = await self.book.latest_head()
        found = [rows[(r.kind, r.id)] for r in refs if (r.kind, r.id) in rows]
        if found:
            last = max(r.leaf_index for r in found) + 1
            await self._ensure_loaded(max(last, head.tree_size if head else 0))
        missing = [r for r in refs if (r.kind, r.id) not in rows]
        return [self._build(row, head) for row in found], missing

    async def _ensure_loaded(self, size: int) -> None:
        # another instance may have appended this leaf: catch up before proving
        if self.tlog.committed_size < size:
            await self.tlog.sync()

    def _build(self, row: LeafRecord, head: AnchoredHeadInfo | None) -> ProofObject:
        entry = leaf_record_to_entry(row)
        if head is not None and row.leaf_index < head.tree_size <= self.tlog.committed_size:
            path = self.tlog.tree.inclusion_proof(row.leaf_index, head.tree_size)
            return ProofObject(
                status="anchored", entry=entry, leaf_index=row.leaf_index,
                tree_size=head.tree_size, root_hash=head.root_hash,
                inclusion_proof=hashes_to_hex(path), head_index=head.head_index,
                tx_hash=head.tx_hash, block_number=head.block_number, chain_id=head.chain_id,
                contract_address=head.contract_address,
            )  # fmt: skip
        # not anchored yet: prove inclusion in the current (committed, unanchored) tree
        size = self.tlog.committed_size
        path = self.tlog.tree.inclusion_proof(row.leaf_index, size)
        return ProofObject(
            status="pending", entry=entry, leaf_index=row.leaf_index, tree_size=size,
            root_hash=self.tlog.root(size).hex(), inclusion_proof=hashes_to_hex(path),
        )  # fmt: skip

    async def consistency(self, from_size: int, to_size: int | None) -> ConsistencyProof:
        """RFC 9162 consistency proof; ``to_size`` defaults to the latest anchored size."""
        committed = await self.tlog.sync()
        if to_size is None:
            head = await self.book.latest_head()
            if head is None:
                raise NotFound("nothing has been anchored yet", code=LedgerErrorCode.NOT_ANCHORED)
            to_size = head.tree_size
        if not 0 <= from_size <= to_size <= committed:
            raise ValidationFailed(
                f"need 0 <= from_size <= to_size <= {committed} (the current tree size)",
                code=LedgerErrorCode.TREE_SIZE_OUT_OF_RANGE,
            )
        path = self.tlog.tree.consistency_proof(from_size, to_size)
        return ConsistencyProof(
            from_size=from_size, to_size=to_size,
            from_root=self.tlog.root(from_size).hex(), to_root=self.tlog.root(to_size).hex(),
            proof=hashes_to_hex(path),
        )  # fmt: skip

    async def info(self) -> LedgerInfo:
        committed = await self.tlog.sync()
        head = await self.book.latest_head()
        deployment = await self.book.current_deployment()
        up = await self.chain.probe()
        latest = None
        if head is not None:
            latest = AnchoredHead(
                index=head.head_index, tree_size=head.tree_size, root_hash=head.root_hash,
                tx_hash=head.tx_hash, block_number=head.block_number, anchored_at=head.confirmed_at,
            )  # fmt: skip
        return LedgerInfo(
            chain_id=self.settings.chain_id,
            contract_address=deployment.contract_address if deployment else None,
            rpc_url_public=self.settings.rpc_url_public or None,
            latest_head=latest,
            pending_leaves=max(committed - (head.tree_size if head else 0), 0),
            tree_size=committed,
            root_hash=self.tlog.root(committed).hex(),
            chain_epoch=deployment.epoch if deployment else 0,
            chain_status="ok" if up else "unreachable",
            lost_anchors=await self.book.lost_count(),
        )
