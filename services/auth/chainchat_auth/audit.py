"""Security events: a row in ``audit_event`` and an ``audit`` log entry for the ledger, both in the
caller's transaction, so an event is anchored if and only if it happened."""

from __future__ import annotations

import json

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_auth.models import AuditEventRow, new_id
from chainchat_protocol.auth import AuditDetail, AuditEvent, AuditListRequest
from chainchat_protocol.log_entry import LogEntry, digest_object, format_timestamp
from chainchat_service.db import Database, as_utc
from chainchat_service.outbox import log_entry_message


def canonical_event(row: AuditEventRow) -> dict[str, object]:
    """The object whose digest is anchored; anyone holding the event can recompute it."""
    return {
        "id": row.id,
        "type": row.type,
        "user_id": row.user_id,
        "actor_id": row.actor_id,
        "ip": row.ip,
        "detail": json.loads(row.detail),
        "at": row.at,
    }


def record_event(
    session: AsyncSession,
    event_type: str,
    *,
    user_id: str | None = None,
    actor_id: str | None = None,
    ip: str | None = None,
    detail: AuditDetail | None = None,
) -> AuditEventRow:
    """Add the event and its ledger entry to ``session``; the caller commits."""
    row = AuditEventRow(
        id=new_id(),
        type=event_type,
        user_id=user_id,
        actor_id=actor_id,
        ip=ip,
        detail=json.dumps(detail or {}, sort_keys=True),
        at=format_timestamp(),
        digest="",
    )
    row.digest = digest_object(canonical_event(row))
    session.add(row)
    session.add(log_entry_message(LogEntry(kind="audit", id=row.id, digest=row.digest, at=row.at)))
    return row


def to_public(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        type=row.type,
        user_id=row.user_id,
        actor_id=row.actor_id,
        ip=row.ip,
        detail=json.loads(row.detail),
        at=row.at,
        digest=row.digest,
    )


async def list_events(db: Database, req: AuditListRequest) -> list[AuditEvent]:
    """Newest first, filtered by type, user (subject or actor) and time."""
    stmt = select(AuditEventRow)
    if req.type:
        stmt = stmt.where(AuditEventRow.type == req.type)
    if req.user_id:
        stmt = stmt.where((AuditEventRow.user_id == req.user_id) | (AuditEventRow.actor_id == req.user_id))
    if req.since is not None:
        stmt = stmt.where(col(AuditEventRow.created_at) >= as_utc(req.since))
    stmt = stmt.order_by(col(AuditEventRow.created_at).desc(), col(AuditEventRow.id)).limit(req.limit)
    async with db.session() as session:
        rows = (await session.exec(stmt)).all()
    return [to_public(r) for r in rows]
