"""NATS side of the ledger: typed request in, typed reply out (see chainchat_protocol.ledger), and
the log entries of the JetStream ``LEDGER`` stream.

Stream entries: the lease holder fetches a batch of messages (each one entry or, from the outbox
relay, a batch of entries: ``chainchat_ledger.entries``), appends them in one transaction (or a
few, ``APPEND_CHUNK``), then acknowledges (``bus.consume_batches``). The durable pull consumer is
shared by every ledger instance; only the lease holder fetches, so one writer appends in stream
order. A message is acknowledged only after
the transaction that appended it committed — a crash in between redelivers it, and the append is
idempotent by ``(kind, id)``. Malformed messages are terminated (never redelivered) with a log line;
a malformed entry inside a batch is logged and left out, the batch's other entries appended.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from chainchat_ledger import metrics
from chainchat_ledger.entries import StreamEntries, decode_message
from chainchat_ledger.leader import LeaderLease
from chainchat_ledger.log import AppendOutcome, TransparencyLog
from chainchat_ledger.proofs import ProofService
from chainchat_ledger.settings import LedgerSettings
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
from chainchat_protocol.log_entry import LogEntry
from chainchat_protocol.proof import ConsistencyProof, ProofObject
from chainchat_protocol.rpc import Empty
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.jetstream import ACK, Received, Settle, Term
from chainchat_service.logging import get_logger
from chainchat_service.loops import Backoff
from chainchat_service.outbox import ensure_ledger_stream

log = get_logger(__name__)

QUEUE = "ledger"
# entries per append transaction: a fetch of batched messages can carry far more than one
# transaction should hold (and than CONSUMER_ACK_WAIT_S allows appending in one piece)
APPEND_CHUNK = 5000


@dataclass(eq=False)
class LedgerHandlers:
    tlog: TransparencyLog
    proofs: ProofService
    lease: LeaderLease
    settings: LedgerSettings
    on_appended: Callable[[], None] = lambda: None  # the anchorer's wake-up

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
        self.on_appended()
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

    # --- the LEDGER stream --------------------------------------------------------------------

    async def consume_entries(self, bus: Bus) -> None:
        """Fetch and append while this instance holds the lease, for the life of the service."""
        s = self.settings
        await bus.consume_batches(
            Subject.LEDGER_STREAM, s.consumer_durable, decode_message, self.append_entries,
            subject=Subject.LEDGER_ENTRY_ALL, batch=s.append_batch_size, fetch_timeout=1.0,
            # the server hands a pull a few dozen messages at a time, and one transaction per few
            # dozen entries would cap the append rate: keep collecting for up to append_linger_s
            linger_s=s.append_linger_s, ack_wait=s.consumer_ack_wait_s,
            max_ack_pending=s.append_batch_size * 4, max_deliver=-1, nak_delay=1.0,
            active=lambda: self.lease.is_leader, backoff=Backoff(0.2, 5.0),
            on_error=_count_consumer_error, prepare=lambda: ensure_ledger_stream(bus),
        )  # fmt: skip

    async def append_entries(self, received: list[Received[StreamEntries]]) -> list[Settle]:
        """Append the well-formed entries of one fetched batch of messages (each one entry or a
        batch of them), in stream order, in transactions of at most ``APPEND_CHUNK`` entries.
        A message is acknowledged after all of them committed (raising: all asked again), and
        terminated when it carries no entry the log could take (malformed or conflicting)."""
        started = time.perf_counter()
        outcomes: list[Settle] = [ACK] * len(received)
        good: list[tuple[int, LogEntry]] = []
        for i, item in enumerate(received):
            if item.event is None:
                outcomes[i] = _reject(item, item.invalid or "invalid")
                continue
            for reason in item.event.rejected:  # the rest of the message is still appended
                _reject(item, reason)
            good.extend((i, entry) for entry in item.event.entries)
        if not good:
            return outcomes
        appended: list[AppendOutcome] = []
        for start in range(0, len(good), APPEND_CHUNK):
            if start:  # a backlog of full batches: keep CONSUMER_ACK_WAIT_S from running out meanwhile
                await asyncio.gather(*(item.msg.in_progress() for item in received))
            appended += await self.tlog.append([entry for _, entry in good[start : start + APPEND_CHUNK]])
        new = duplicate = 0
        taken: set[int] = set()  # messages with at least one entry in the log
        for (i, _), outcome in zip(good, appended, strict=True):
            if outcome.conflict:
                _reject(received[i], f"conflicts with leaf {outcome.leaf_index} (same kind and id, "
                                     "another digest)")  # fmt: skip
                continue
            taken.add(i)
            if outcome.duplicate:
                duplicate += 1
            else:
                new += 1
        for i in {i for i, _ in good} - taken:
            outcomes[i] = Term("conflict")  # logged above, entry by entry
        metrics.ENTRIES_CONSUMED.labels("appended").inc(new)
        metrics.ENTRIES_CONSUMED.labels("duplicate").inc(duplicate)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        if new:
            self.on_appended()
        return outcomes


def _reject(item: Received[StreamEntries], reason: str) -> Term:
    metrics.ENTRIES_CONSUMED.labels("rejected").inc()
    log.warning("ledger_entry_rejected", subject=item.subject, reason=reason, stream_seq=item.stream_seq)
    return Term(reason)


def _count_consumer_error(_: Exception) -> None:
    metrics.LOOP_ERRORS.labels("consumer").inc()
