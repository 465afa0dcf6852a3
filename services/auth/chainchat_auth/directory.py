"""The user and public-key directory: device keys (SPEC §4), lookups, search."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_auth.audit import record_event
from chainchat_auth.context import AuthContext, ensure_active
from chainchat_auth.mailer import device_added_mail, queue_mail
from chainchat_auth.models import DeviceKey, User, new_id
from chainchat_protocol import keys
from chainchat_protocol.auth import (
    AuthErrorCode,
    DevicesReply,
    KeyChanged,
    OwnDevice,
    OwnDevicesReply,
    PublishKeyReply,
    PublishKeyRequest,
    RevokedDeviceKey,
    RevokeKeyRequest,
    UserHit,
    UserKeysReply,
    UserSearchReply,
    UserSearchRequest,
    UsersGetReply,
    UserSummary,
)
from chainchat_protocol.auth import DeviceKey as DeviceKeyView
from chainchat_protocol.b64 import b64d_exact
from chainchat_protocol.errors import Conflict, Forbidden, NotFound
from chainchat_protocol.log_entry import LogEntry, digest_object, format_timestamp
from chainchat_protocol.subjects import Subject
from chainchat_service.db import as_utc, utcnow
from chainchat_service.outbox import OutboxMessage, log_entry_message, outbox_message

MAX_DEVICES = 20
# the id of a revocation's ``key`` log entry is the key id with this suffix
REVOKED_SUFFIX = ":revoked"


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
    """Publish a device key: idempotent for the same keys; logs a ``key`` entry when new.

    A new key on an account that already has a live one needs recent authentication (a stolen
    access token must not add a device that every later message is sealed to), and is announced
    to the owner: a ``device_added`` frame to its connected devices and a mail."""
    kid = keys.key_id(b64d_exact(req.x25519_public, 32), b64d_exact(req.ed25519_public, 32))
    suites = ",".join(dict.fromkeys(req.suite_support))
    async with ctx.db.session() as session:
        user = await session.get(User, req.user_id)
        if user is None:
            raise NotFound("no such user", code=AuthErrorCode.USER_NOT_FOUND)
        ensure_active(user)
        owned = (await session.exec(select(DeviceKey).where(DeviceKey.key_id == kid))).all()
        for row in owned:
            if row.user_id != user.id:
                raise Conflict("this key belongs to another account", code=AuthErrorCode.KEY_IN_USE)
            if row.revoked_at is not None:
                raise Conflict("this key was revoked; generate a new one", code=AuthErrorCode.KEY_REVOKED)
            return PublishKeyReply(key_id=kid, created=False)
        live = (
            select(func.count())
            .select_from(DeviceKey)
            .where(DeviceKey.user_id == user.id, col(DeviceKey.revoked_at).is_(None))
        )
        others = (await session.exec(live)).one()
        if others and not req.reauthenticated:
            raise Forbidden(
                "adding a device needs your password again (POST /auth/reauth)",
                code=AuthErrorCode.REAUTH_REQUIRED,
            )
        if others >= MAX_DEVICES:
            raise Conflict(
                f"at most {MAX_DEVICES} device keys; revoke one first", code=AuthErrorCode.TOO_MANY_DEVICES
            )
        row = DeviceKey(
            user_id=user.id,
            key_id=kid,
            x25519_public=req.x25519_public,
            ed25519_public=req.ed25519_public,
            suite_support=suites,
            label=req.label,
        )
        session.add(row)
        _announce_device(session, ctx, user, row, first=not others)
        try:
            await session.commit()
        except IntegrityError:
            return PublishKeyReply(key_id=kid, created=False)  # the same key, published concurrently
    ctx.after_commit()
    return PublishKeyReply(key_id=kid, created=True)


def _announce_device(
    session: AsyncSession, ctx: AuthContext, user: User, row: DeviceKey, *, first: bool
) -> None:
    """The new key's log entry, its ``key_changed`` event (with what ``device_added`` shows) and,
    unless it is the account's first device, the mail to the owner; all in the caller's commit."""
    at = format_timestamp(as_utc(row.created_at))
    session.add(log_entry_message(key_entry(row)))
    session.add(_key_changed(KeyChanged(user_id=user.id, key_id=row.key_id, label=row.label, at=at)))
    record_event(session, "key_published", user_id=user.id, detail={"key_id": row.key_id, "label": row.label})
    if not first:
        subject, text, html_body = device_added_mail(
            ctx.settings, name=user.display_name, key_id=row.key_id, label=row.label, at=at
        )
        queue_mail(session, user.email, subject, text, html_body)


def _key_changed(event: KeyChanged) -> OutboxMessage:
    return outbox_message(Subject.KEY_CHANGED, event, msg_id=f"key_changed:{new_id()}", jetstream=False)


def revocation_entry(row: DeviceKey) -> LogEntry:
    """The ``key`` log entry of a revocation: id ``<key_id>:revoked``, digest over who, which, when."""
    assert row.revoked_at is not None
    at = format_timestamp(as_utc(row.revoked_at))
    digest = digest_object({"user_id": row.user_id, "key_id": row.key_id, "revoked_at": at})
    return LogEntry(kind="key", id=f"{row.key_id}{REVOKED_SUFFIX}", digest=digest, at=at)


async def revoke_key(ctx: AuthContext, req: RevokeKeyRequest) -> None:
    """Revoke one of the caller's device keys (404 if it is not theirs or already revoked); the
    gateway checked a reauth token. Chat stops requiring the key as a recipient at once (the
    ``key_changed`` event evicts its cache) and a ``key`` entry logs the revocation."""
    async with ctx.db.session() as session:
        stmt = select(DeviceKey).where(
            DeviceKey.user_id == req.user_id,
            DeviceKey.key_id == req.key_id,
            col(DeviceKey.revoked_at).is_(None),
        )
        row = (await session.exec(stmt)).first()
        if row is None:
            raise NotFound("no such device key", code=AuthErrorCode.KEY_NOT_FOUND)
        row.revoked_at = utcnow()
        session.add(row)
        session.add(log_entry_message(revocation_entry(row)))
        session.add(_key_changed(KeyChanged(user_id=req.user_id, key_id=req.key_id, revoked=True)))
        record_event(session, "key_revoked", user_id=req.user_id, detail={"key_id": req.key_id})
        await session.commit()
    ctx.after_commit()


async def _rows(ctx: AuthContext, user_ids: list[str], *, live: bool = True) -> dict[str, list[DeviceKey]]:
    stmt = select(DeviceKey).where(col(DeviceKey.user_id).in_(user_ids))
    if live:
        stmt = stmt.where(col(DeviceKey.revoked_at).is_(None))
    found: dict[str, list[DeviceKey]] = {uid: [] for uid in user_ids}
    async with ctx.db.session() as session:
        for row in (await session.exec(stmt.order_by(col(DeviceKey.created_at), col(DeviceKey.id)))).all():
            found[row.user_id].append(row)
    return found


async def user_keys(ctx: AuthContext, user_id: str) -> UserKeysReply:
    """A user's current device keys, and its revoked ones (to verify history with, never to seal
    to), with their log entries; 404 for unknown or not-yet-approved accounts."""
    async with ctx.db.session() as session:
        user = await session.get(User, user_id)
    if user is None or user.status not in ("active", "disabled"):
        raise NotFound("no such user", code=AuthErrorCode.USER_NOT_FOUND)
    rows = (await _rows(ctx, [user_id], live=False))[user_id]
    current = [r for r in rows if r.revoked_at is None]
    revoked = [r for r in rows if r.revoked_at is not None]
    entries = {r.key_id: key_entry(r) for r in rows}
    entries.update({(e := revocation_entry(r)).id: e for r in revoked})
    return UserKeysReply(
        user_id=user_id,
        keys=[_view(r) for r in current],
        revoked_keys=[
            RevokedDeviceKey(**_view(r).model_dump(), revoked_at=as_utc(r.revoked_at)) for r in revoked
        ],  # type: ignore[arg-type]
        entries=entries,
    )


async def own_devices(ctx: AuthContext, user_id: str) -> OwnDevicesReply:
    """The caller's devices, revoked ones included, oldest first (``GET /keys/me``)."""
    rows = (await _rows(ctx, [user_id], live=False))[user_id]
    return OwnDevicesReply(
        devices=[
            OwnDevice(
                key_id=r.key_id,
                label=r.label,
                created_at=as_utc(r.created_at),
                revoked_at=as_utc(r.revoked_at) if r.revoked_at else None,
            )
            for r in rows
        ]
    )


async def devices(ctx: AuthContext, user_ids: list[str]) -> DevicesReply:
    """Current device keys for many users at once (chat checks envelope recipients with it)."""
    rows = await _rows(ctx, list(dict.fromkeys(user_ids)))
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
