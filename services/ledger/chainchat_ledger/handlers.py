"""NATS handlers of the ledger: typed request in, typed reply out (see chainchat_protocol.ledger)."""

from __future__ import annotations

from chainchat_ledger.log import TransparencyLog
from chainchat_ledger.proofs import ProofService
from chainchat_protocol.errors import Conflict, ValidationFailed
from chainchat_protocol.ledger import (
    LEDGER_APPEND,
    LEDGER_CONSISTENCY,
    LEDGER_INFO,
    LEDGER_PROOF_BATCH,
    LEDGER_PROOF_GET,
    AppendReply,
    AppendRequest,
    AppendResult,
    ConsistencyRequest,
    EntryRef,
    LedgerErrorCode,
    LedgerInfo,
    ProofBatchReply,
    ProofBatchRequest,
    valid_entry_id,
)
from chainchat_protocol.proof import ConsistencyProof, ProofObject
from chainchat_protocol.rpc import Empty
from chainchat_service.bus import Bus

QUEUE = "ledger"


class LedgerHandlers:
    def __init__(self, tlog: TransparencyLog, proofs: ProofService, on_appended: object) -> None:
        self.tlog = tlog
        self.proofs = proofs
        self._on_appended = on_appended

    async def register(self, bus: Bus) -> None:
        await bus.serve(LEDGER_APPEND, self.append, queue=QUEUE)
        await bus.serve(LEDGER_PROOF_GET, self.proof, queue=QUEUE)
        await bus.serve(LEDGER_PROOF_BATCH, self.proof_batch, queue=QUEUE)
        await bus.serve(LEDGER_CONSISTENCY, self.consistency, queue=QUEUE)
        await bus.serve(LEDGER_INFO, self.info, queue=QUEUE)

    async def append(self, req: AppendRequest) -> AppendReply:
        bad = [e.id for e in req.entries if not valid_entry_id(e.id)]
        if bad:
            raise ValidationFailed(
                "entry ids must be 1-200 printable ASCII characters without spaces",
                code=LedgerErrorCode.INVALID_ENTRY_ID,
            )
        outcomes = await self.tlog.append(req.entries)
        conflicts = [f"{o.entry.kind}:{o.entry.id}" for o in outcomes if o.conflict]
        if conflicts:
            raise Conflict(
                f"already in the log with another digest: {', '.join(conflicts[:5])}",
                code=LedgerErrorCode.ENTRY_CONFLICT,
            )
        if callable(self._on_appended):
            self._on_appended()
        return AppendReply(
            results=[
                AppendResult(
                    kind=o.entry.kind, id=o.entry.id, leaf_index=o.leaf_index, duplicate=o.duplicate
                )  # fmt: skip
                for o in outcomes
            ],
            tree_size=self.tlog.committed_size,
        )

    async def proof(self, req: EntryRef) -> ProofObject:
        return await self.proofs.proof(req)

    async def proof_batch(self, req: ProofBatchRequest) -> ProofBatchReply:
        proofs, missing = await self.proofs.proofs(req.entries)
        return ProofBatchReply(proofs=proofs, missing=missing)

    async def consistency(self, req: ConsistencyRequest) -> ConsistencyProof:
        return await self.proofs.consistency(req.from_size, req.to_size)

    async def info(self, _: Empty) -> LedgerInfo:
        return await self.proofs.info()
