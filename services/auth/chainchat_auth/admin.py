"""Administration: approvals, disabling, roles, signing-key rotation. Never lose the last admin."""

from __future__ import annotations

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_auth.audit import record_event
from chainchat_auth.context import AuthContext
from chainchat_auth.models import User
from chainchat_auth.sessions import revoke_user_sessions
from chainchat_protocol.auth import (
    JWKS_CHANGED,
    AdminActionRequest,
    AdminRoleRequest,
    AdminUsersReply,
    AdminUsersRequest,
    AuthErrorCode,
    JwksChanged,
    JwksReply,
    RotateKeyRequest,
    UserPublic,
)
from chainchat_protocol.errors import Conflict, Forbidden, NotFound
from chainchat_service.outbox import outbox_message

_STATUS_FILTER = {
    "pending": "pending_approval",
    "active": "active",
    "disabled": "disabled",
    "rejected": "rejected",
    "unverified": "pending_verification",
}

# action -> (states it applies to, resulting state)
_TRANSITIONS = {
    "approve": ({"pending_approval"}, "active"),
    "reject": ({"pending_approval"}, "rejected"),
    "disable": ({"active", "pending_approval", "pending_verification"}, "disabled"),
    "enable": ({"disabled", "rejected"}, "active"),
}


async def list_users(ctx: AuthContext, req: AdminUsersRequest) -> AdminUsersReply:
    """Accounts, oldest first, optionally by status."""
    stmt = select(User).order_by(col(User.created_at)).limit(req.limit)
    if req.status is not None:
        stmt = stmt.where(User.status == _STATUS_FILTER[req.status])
    async with ctx.db.session() as session:
        users = (await session.exec(stmt)).all()
    return AdminUsersReply(users=[u.public() for u in users])


async def require_admin(ctx: AuthContext, actor_id: str) -> None:
    """The actor of an admin request is an active admin *in this database*: the gateway checked
    the token's role claim, but a request on the bus is not trusted for who it says acts."""
    async with ctx.db.session() as session:
        actor = await session.get(User, actor_id)
    if actor is None or actor.role != "admin" or actor.status != "active":
        raise Forbidden("only an active admin may do this", code=AuthErrorCode.ADMIN_REQUIRED)


async def _target(session: AsyncSession, user_id: str) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", code=AuthErrorCode.USER_NOT_FOUND)
    return user


async def _ensure_not_last_admin(session: AsyncSession, user: User) -> None:
    if user.role != "admin" or user.status != "active":
        return
    stmt = select(func.count()).select_from(User).where(User.role == "admin", User.status == "active")
    if (await session.exec(stmt)).one() <= 1:
        raise Conflict("this is the last active admin", code=AuthErrorCode.LAST_ADMIN)


async def act(ctx: AuthContext, req: AdminActionRequest) -> UserPublic:
    """Approve, reject, disable or enable an account; disabling revokes its sessions at once."""
    allowed, new_status = _TRANSITIONS[req.action]
    async with ctx.db.session() as session:
        user = await _target(session, req.user_id)
        if user.status == new_status:
            return user.public()  # idempotent: a retried click changes nothing
        if user.status not in allowed:
            raise Conflict(
                f"cannot {req.action} an account that is {user.status}", code=AuthErrorCode.INVALID_STATE
            )
        if req.action == "enable" and user.email_verified_at is None:
            raise Conflict("the e-mail address was never verified", code=AuthErrorCode.INVALID_STATE)
        if new_status != "active":
            await _ensure_not_last_admin(session, user)
        previous = user.status
        user.status = new_status
        session.add(user)
        if new_status in ("disabled", "rejected"):
            await revoke_user_sessions(session, ctx, user.id, f"account_{new_status}")
        record_event(
            session,
            f"user_{req.action}d" if req.action != "reject" else "user_rejected",
            user_id=user.id,
            actor_id=req.actor_id,
            ip=req.client_ip,
            detail={"from": previous, "to": new_status},
        )
        await session.commit()
    ctx.after_commit()
    return user.public()


async def set_role(ctx: AuthContext, req: AdminRoleRequest) -> UserPublic:
    """Change a role; a demotion revokes the sessions so the old role claim dies with them."""
    async with ctx.db.session() as session:
        user = await _target(session, req.user_id)
        if user.role == req.role:
            return user.public()
        if req.role != "admin":
            await _ensure_not_last_admin(session, user)
        previous = user.role
        user.role = req.role
        session.add(user)
        if previous == "admin":
            await revoke_user_sessions(session, ctx, user.id, "role_changed")
        record_event(
            session,
            "role_changed",
            user_id=user.id,
            actor_id=req.actor_id,
            ip=req.client_ip,
            detail={"from": previous, "to": req.role},
        )
        await session.commit()
    ctx.after_commit()
    return user.public()


async def rotate_signing_key(ctx: AuthContext, req: RotateKeyRequest) -> JwksReply:
    """Start signing with a new key; the previous one keeps verifying until its tokens expire."""
    key = await ctx.signer.rotate()
    async with ctx.db.session() as session:
        record_event(session, "signing_key_rotated", actor_id=req.actor_id, detail={"kid": key.kid})
        changed = JwksChanged(kid=key.kid)
        session.add(outbox_message(JWKS_CHANGED, changed, msg_id=f"jwks:{key.kid}", jetstream=False))
        await session.commit()
    ctx.after_commit()
    return await ctx.signer.jwks()
