"""NATS handlers of the auth service: typed request in, service call, typed reply out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from chainchat_auth import accounts, admin, audit, directory, mfa, reauth, sessions, wallet
from chainchat_auth.context import AuthContext
from chainchat_protocol import auth as p
from chainchat_protocol.rpc import Empty, Rpc
from chainchat_service.bus import Bus

QUEUE = "auth"

Handler = Callable[[Any], Awaitable[Any]]


async def _empty(work: Awaitable[None]) -> Empty:
    await work
    return Empty()


async def _audit_list(ctx: AuthContext, req: p.AuditListRequest) -> p.AuditListReply:
    return p.AuditListReply(events=await audit.list_events(ctx.db, req))


def _as_admin(ctx: AuthContext, call: Handler) -> Handler:
    """An admin request: its ``actor_id`` must be an active admin in auth's own database."""

    async def run(req: Any) -> Any:
        await admin.require_admin(ctx, req.actor_id)
        return await call(req)

    return run


class AuthHandlers:
    """Adapts the auth domain modules to the ``auth.*`` subjects (one queue group for all instances)."""

    def __init__(self, ctx: AuthContext) -> None:
        self.ctx = ctx

    async def register(self, bus: Bus, *, concurrency: int = 8) -> None:
        """Serve every subject. A login spends ~50 ms in argon2 (in a thread): up to
        ``concurrency`` requests of one kind run side by side per instance (the bus bounds them
        per subscription)."""
        for rpc, handler in self.table():
            await bus.serve(rpc, handler, queue=QUEUE, concurrency=concurrency)

    def table(self) -> list[tuple[Rpc[Any, Any], Handler]]:
        """Every ``auth.*`` subject with the service call that answers it."""
        ctx = self.ctx
        return [
            (p.AUTH_REGISTER, lambda r: accounts.register(ctx, r)),
            (p.AUTH_VERIFY, lambda r: accounts.verify_email(ctx, r.token)),
            (p.AUTH_VERIFY_RESEND, lambda r: _empty(accounts.resend_verification(ctx, r))),
            (p.AUTH_LOGIN, lambda r: accounts.login(ctx, r)),
            (p.AUTH_REFRESH, lambda r: sessions.refresh(ctx, r)),
            (p.AUTH_LOGOUT, lambda r: _empty(sessions.logout(ctx, r))),
            (p.AUTH_ME, lambda r: accounts.me(ctx, r.user_id)),
            (p.AUTH_MFA_SETUP, lambda r: mfa.setup(ctx, r.user_id)),
            (p.AUTH_MFA_ENABLE, lambda r: mfa.enable(ctx, r)),
            (p.AUTH_MFA_DISABLE, lambda r: mfa.disable(ctx, r)),
            (p.AUTH_SIWE_NONCE, lambda req: wallet.new_nonce(ctx, req)),
            (p.AUTH_SIWE, lambda r: wallet.sign_in(ctx, r)),
            (p.AUTH_RESET_REQUEST, lambda r: _empty(accounts.request_password_reset(ctx, r))),
            (p.AUTH_RESET, lambda r: _empty(accounts.reset_password(ctx, r))),
            (p.AUTH_PASSWORD_CHANGE, lambda r: _empty(reauth.change_password(ctx, r))),
            (p.AUTH_REAUTH, lambda r: reauth.reauthenticate(ctx, r)),
            (p.AUTH_SIWE_UNLINK, lambda r: wallet.unlink(ctx, r)),
            (p.AUTH_JWKS, lambda _: ctx.signer.jwks()),
            (p.AUTH_JWKS_ROTATE, _as_admin(ctx, lambda r: admin.rotate_signing_key(ctx, r))),
            (p.AUTH_REVOKED_LIST, lambda _: sessions.revoked_list(ctx)),
            (p.AUTH_ADMIN_USERS, _as_admin(ctx, lambda r: admin.list_users(ctx, r))),
            (p.AUTH_ADMIN_ACTION, _as_admin(ctx, lambda r: admin.act(ctx, r))),
            (p.AUTH_ADMIN_ROLE, _as_admin(ctx, lambda r: admin.set_role(ctx, r))),
            (p.AUTH_AUDIT_LIST, _as_admin(ctx, lambda r: _audit_list(ctx, r))),
            (p.AUTH_USERS_GET, lambda r: directory.users_get(ctx, r.user_ids)),
            (p.AUTH_USERS_SEARCH, lambda r: directory.search(ctx, r)),
            (p.AUTH_KEYS_PUBLISH, lambda r: directory.publish_key(ctx, r)),
            (p.AUTH_KEYS_REVOKE, lambda r: _empty(directory.revoke_key(ctx, r))),
            (p.AUTH_KEYS_GET, lambda r: directory.user_keys(ctx, r.user_id)),
            (p.AUTH_KEYS_MINE, lambda r: directory.own_devices(ctx, r.user_id)),
            (p.AUTH_KEYS_DEVICES, lambda r: directory.devices(ctx, r.user_ids)),
        ]
