"""The user and public-key directory: device keys (SPEC §4), lookups, search."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, or_, select

from chainchat_auth.audit import record_event
from chainchat_auth.context import AuthContext, ensure_active
from chainchat_auth.models import DeviceKey, User, as_utc, new_id, utcnow
from chainchat_protocol import keys
from chainchat_protocol.auth import DeviceKey as DeviceKeyView
from chainchat_protocol.auth import (
    DevicesReply,
    KeyChanged,
    PublishKeyReply,
    PublishKeyRequest,
    RevokeKeyRequest,
    UserHit,
    UserKeysReply,
    UserSearchReply,
    UserSearchRequest,
    UsersGetReply,
    UserSummary,
)
from chainchat_protocol.b64 import b64d_exact
from chainchat_protocol.errors import Conflict, NotFound
from chainchat_protocol.log_entry import LogEntry, digest_object, format_timestamp
from chainchat_protocol.subjects import Subject
from chainchat_service.outbox import OutboxMessage, log_entry_message, outbox_message

MAX_DEVICES = 20


def key_object(row: DeviceKey) -> dict[str, str]:
    """What a ``key`` log entry's digest covers; a client recomputes it from ``GET /keys``."""
    return {
        "user_id": row.user_id,
        "key_id": row.key_id,
        "x25519_public": row.x25519_public,
        "ed25519_public": row.ed25519_public,
    }


def key_entry(row: DeviceKey) -> LogEntry:
    """The ``key`` log entry of a device key (reproducible from the row at any time)."""
    return LogEntry(
        kind="key",
        id=row.key_id,
        digest=digest_object(key_object(row)),
        at=format_timestamp(as_utc(row.created_at)),
    )


def _view(row: DeviceKey) -> DeviceKeyView:
    return DeviceKeyView(
        key_id=row.key_id,
        x25519_public=row.x25519_public,
        ed25519_public=row.ed25519_public,
        suite_support=[s for s in row.suite_support.split(",") if s],
        created_at=as_utc(row.created_at),
    )


async def publish_key(ctx: AuthContext, req: PublishKeyRequest) -> PublishKeyReply:
    """Publish a device key: idempotent for the same keys; logs a ``key`` entry when new."""
    kid = keys.key_id(b64d_exact(req.x25519_public, 32), b64d_exact(req.ed25519_public, 32))
    suites = ",".join(dict.fromkeys(req.suite_support))
    async with ctx.db.session() as session:
        user = await session.get(User, req.user_id)
        if user is None:
            raise NotFound("no such user", code="user_not_found")
        ensure_active(user)
        owned = (await session.exec(select(DeviceKey).where(DeviceKey.key_id == kid))).all()
        for row in owned:
            if row.user_id != user.id:
                raise Conflict("this key belongs to another account", code="key_in_use")
            if row.revoked_at is not None:
                raise Conflict("this key was revoked; generate a new one", code="key_revoked")
            return PublishKeyReply(key_id=kid, created=False)
        live = (
            select(func.count())
            .select_from(DeviceKey)
            .where(DeviceKey.user_id == user.id, col(DeviceKey.revoked_at).is_(None))
        )
        if (await session.exec(live)).one() >= MAX_DEVICES:
            raise Conflict(f"at most {MAX_DEVICES} device keys; revoke one first", code="too_many_devices")
        row = DeviceKey(
            user_id=user.id,
            key_id=kid,
            x25519_public=req.x25519_public,
            ed25519_public=req.ed25519_public,
            suite_support=suites,
        )
        session.add(row)
        session.add(log_entry_message(key_entry(row)))
        session.add(_key_changed(user.id, kid, revoked=False))
        record_event(session, "key_published", user_id=user.id, detail={"key_id": kid})
        try:
            await session.commit()
        except IntegrityError:
            return PublishKeyReply(key_id=kid, created=False)  # the same key, published concurrently
    ctx.after_commit()
    return PublishKeyReply(key_id=kid, created=True)


def _key_changed(user_id: str, key_id: str, *, revoked: bool) -> OutboxMessage:
    event = KeyChanged(user_id=user_id, key_id=key_id, revoked=revoked)
    return outbox_message(Subject.KEY_CHANGED, event, msg_id=f"key_changed:{new_id()}", jetstream=False)


async def revoke_key(ctx: AuthContext, req: RevokeKeyRequest) -> None:
    """Revoke one of the caller's device keys (404 if it is not theirs or already revoked)."""
    async with ctx.db.session() as session:
        stmt = select(DeviceKey).where(
            DeviceKey.user_id == req.user_id,
            DeviceKey.key_id == req.key_id,
            col(DeviceKey.revoked_at).is_(None),
        )
        row = (await session.exec(stmt)).first()
        if row is None:
            raise NotFound("no such device key", code="key_not_found")
        row.revoked_at = utcnow()
        session.add(row)
        session.add(_key_changed(req.user_id, req.key_id, revoked=True))
        record_event(session, "key_revoked", user_id=req.user_id, detail={"key_id": req.key_id})
        await session.commit()
    ctx.after_commit()


async def _live_rows(ctx: AuthContext, user_ids: list[str]) -> dict[str, list[DeviceKey]]:
    stmt = (
        select(DeviceKey)
        .where(col(DeviceKey.user_id).in_(user_ids), col(DeviceKey.revoked_at).is_(None))
        .order_by(col(DeviceKey.created_at), col(DeviceKey.id))
    )
    found: dict[str, list[DeviceKey]] = {uid: [] for uid in user_ids}
    async with ctx.db.session() as session:
        for row in (await session.exec(stmt)).all():
            found[row.user_id].append(row)
    return found


async def user_keys(ctx: AuthContext, user_id: str) -> UserKeysReply:
    """A user's current device keys; 404 for unknown or not-yet-approved accounts."""
    async with ctx.db.session() as session:
        user = await session.get(User, user_id)
    if user is None or user.status not in ("active", "disabled"):
        raise NotFound("no such user", code="user_not_found")
    rows = (await _live_rows(ctx, [user_id]))[user_id]
    return UserKeysReply(
        user_id=user_id, keys=[_view(r) for r in rows], entries={r.key_id: key_entry(r) for r in rows}
    )


async def devices(ctx: AuthContext, user_ids: list[str]) -> DevicesReply:
    """Current device keys for many users at once (chat checks envelope recipients with it)."""
    rows = await _live_rows(ctx, list(dict.fromkeys(user_ids)))
    return DevicesReply(devices={uid: [_view(r) for r in found] for uid, found in rows.items()})


async def users_get(ctx: AuthContext, user_ids: list[str]) -> UsersGetReply:
    """Summaries of the users that exist (unknown ids are left out)."""
    stmt = select(User).where(col(User.id).in_(list(dict.fromkeys(user_ids))))
    async with ctx.db.session() as session:
        users = (await session.exec(stmt)).all()
    return UsersGetReply(
        users=[UserSummary(id=u.id, display_name=u.display_name, status=u.status, role=u.role) for u in users]  # type: ignore[arg-type]
    )


def _like_prefix(text: str) -> str:
    # the search text is data: escape LIKE's own wildcards
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def search(ctx: AuthContext, req: UserSearchRequest) -> UserSearchReply:
    """Active users whose display name or e-mail starts with ``q`` (case-insensitive)."""
    pattern = _like_prefix(req.q.strip().lower())
    stmt = (
        select(User)
        .where(User.status == "active")
        .where(
            or_(
                col(User.display_name_lc).like(pattern, escape="\\"),
                col(User.email).like(pattern, escape="\\"),
            )
        )
        .order_by(col(User.display_name_lc), col(User.id))
        .limit(req.limit)
    )
    async with ctx.db.session() as session:
        users = (await session.exec(stmt)).all()
    return UserSearchReply(users=[UserHit(user_id=u.id, display_name=u.display_name) for u in users])
