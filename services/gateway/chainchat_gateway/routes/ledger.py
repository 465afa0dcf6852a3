"""Public API routes for the ledger domain (SPEC §7); they forward to the ledger service over NATS.

``/ledger/info`` and ``/ledger/consistency`` are public, as a transparency log's tree heads are
meant to be (RFC 9162 logs serve them without authentication): anyone may check that heads only
grow. Proofs of a message or a file reveal that the object exists, so they need a logged-in caller
whom the owning service (chat, files) lets see the object; the ledger itself knows no users. An
object the owning service shows but whose entry has not reached the ledger yet (it travels through
the owner's outbox and JetStream) has a ``pending`` proof with a null entry, not a 404 (SPEC §11).
``proofs_for`` gives the other domains' routes (audit, key directory) their entries' proofs.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query

from chainchat_gateway.deps import BusDep, SettingsDep
from chainchat_gateway.security import CurrentUser
from chainchat_protocol.chat import CHAT_MESSAGE_ACCESS, ChatErrorCode, MessageAccessRequest
from chainchat_protocol.errors import ChainChatError, NotFound
from chainchat_protocol.files import FILE_ACCESS, FileAccessRequest, FilesErrorCode
from chainchat_protocol.ledger import (
    LEDGER_CONSISTENCY,
    LEDGER_INFO,
    LEDGER_PROOF_BATCH,
    LEDGER_PROOF_GET,
    MAX_PROOF_BATCH,
    ConsistencyRequest,
    EntryRef,
    LedgerErrorCode,
    LedgerInfo,
    ProofBatchRequest,
)
from chainchat_protocol.log_entry import LogEntry, LogKind
from chainchat_protocol.proof import ConsistencyProof, ProofObject
from chainchat_protocol.rpc import Empty
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger

log = get_logger(__name__)

router = APIRouter(tags=["ledger"])

# the identifier charset of chat and files: a malformed id names nothing (404, no 422 oracle)
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_MAX_TREE_SIZE = 2**63 - 1


@router.get(
    "/ledger/info", response_model=LedgerInfo, summary="Chain, contract, latest anchored head, backlog"
)
async def ledger_info(bus: BusDep, settings: SettingsDep) -> LedgerInfo:
    return await bus.request(LEDGER_INFO, Empty(), timeout=settings.rpc_timeout_s)


@router.get(
    "/ledger/consistency",
    response_model=ConsistencyProof,
    summary="RFC 9162 consistency proof between two tree sizes (to_size: latest anchored head)",
)
async def ledger_consistency(
    bus: BusDep,
    settings: SettingsDep,
    from_size: Annotated[int, Query(ge=0, le=_MAX_TREE_SIZE)],
    to_size: Annotated[int | None, Query(ge=0, le=_MAX_TREE_SIZE)] = None,
) -> ConsistencyProof:
    req = ConsistencyRequest(from_size=from_size, to_size=to_size)
    return await bus.request(LEDGER_CONSISTENCY, req, timeout=settings.rpc_timeout_s)


@router.get(
    "/messages/{message_id}/proof",
    response_model=ProofObject,
    summary="Inclusion proof of a message in the transparency log, anchored on chain or pending",
)
async def message_proof(
    message_id: str, user: CurrentUser, bus: BusDep, settings: SettingsDep
) -> ProofObject:
    if _ID.fullmatch(message_id) is None:
        raise NotFound("message not found", code=ChatErrorCode.MESSAGE_NOT_FOUND)
    access = MessageAccessRequest(user_id=user.user_id, message_id=message_id)
    await bus.request(CHAT_MESSAGE_ACCESS, access, timeout=settings.rpc_timeout_s)
    return await _proof(bus, "message", message_id, settings.rpc_timeout_s)


@router.get(
    "/files/{file_id}/proof",
    response_model=ProofObject,
    summary="Inclusion proof of a file in the transparency log, anchored on chain or pending",
)
async def file_proof(file_id: str, user: CurrentUser, bus: BusDep, settings: SettingsDep) -> ProofObject:
    if _ID.fullmatch(file_id) is None:
        raise NotFound("file not found", code=FilesErrorCode.FILE_NOT_FOUND)
    access = FileAccessRequest(user_id=user.user_id, file_id=file_id)
    await bus.request(FILE_ACCESS, access, timeout=settings.rpc_timeout_s)
    return await _proof(bus, "file", file_id, settings.rpc_timeout_s)


async def proofs_for(bus: Bus, entries: list[LogEntry]) -> dict[str, ProofObject]:
    """Proof per entry id from the ledger; ``pending`` when it does not know it or is away."""
    proofs = {e.id: ProofObject(status="pending", entry=e) for e in entries}
    for start in range(0, len(entries), MAX_PROOF_BATCH):
        batch = entries[start : start + MAX_PROOF_BATCH]
        request = ProofBatchRequest(entries=[EntryRef(kind=e.kind, id=e.id) for e in batch])
        try:
            reply = await bus.request(LEDGER_PROOF_BATCH, request, timeout=3.0)
        except ChainChatError:
            return proofs  # the ledger is down or busy: status unknown counts as pending
        for proof in reply.proofs:
            if proof.entry is None:  # the ledger always names what it proves; skip a bad reply
                continue
            ours = proofs.get(proof.entry.id)
            if ours is not None and proof.entry == ours.entry:
                proofs[proof.entry.id] = proof
            elif ours is not None:
                log.warning("ledger_entry_mismatch", kind=proof.entry.kind, entry_id=proof.entry.id)
    return proofs


async def _proof(bus: Bus, kind: LogKind, entry_id: str, timeout: float) -> ProofObject:
    """The ledger's proof of an object the caller may see (the access check came first)."""
    try:
        return await bus.request(LEDGER_PROOF_GET, EntryRef(kind=kind, id=entry_id), timeout=timeout)
    except NotFound as exc:
        if exc.code != LedgerErrorCode.ENTRY_NOT_FOUND:
            raise
        return ProofObject.not_yet_logged()
