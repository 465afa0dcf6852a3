"""Public API routes for the auth domain (SPEC §7); they forward to the auth service over NATS.

Accounts and sessions (``/auth/*``), administration (``/admin/users``, ``/admin/audit``), the key
directory (``/keys``) and user search (``/users``). The e-mail link page ``GET /verify`` is a
route of ``web.py`` (at the root, before the web client's catch-all); the token verifier lives in
``security.py``, the ledger proofs of audit events in ``ledger.py``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ValidationError

from chainchat_gateway.cookies import (
    clear_refresh_cookie,
    clearing_header,
    refresh_cookie,
    set_refresh_cookie,
)
from chainchat_gateway.deps import BusDep, SettingsDep
from chainchat_gateway.openapi import errors
from chainchat_gateway.ratelimit import client_ip
from chainchat_gateway.routes.ledger import proofs_for
from chainchat_gateway.security import (
    AdminUser,
    CurrentUser,
    OptionalUser,
    ReauthHeader,
    RecentUser,
)
from chainchat_gateway.settings import GatewaySettings
from chainchat_protocol import auth as p
from chainchat_protocol.errors import Unauthorized
from chainchat_protocol.log_entry import LogEntry
from chainchat_protocol.rpc import Rpc
from chainchat_service.bus import Bus

router = APIRouter(tags=["auth"])

UserIdPath = Annotated[str, Path(min_length=1, max_length=64)]
KeyIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"


async def _call(bus: Bus, settings: GatewaySettings, rpc: Rpc[Any, Any], req: BaseModel) -> Any:
    return await bus.request(rpc, req, timeout=settings.rpc_timeout_s)


def _ip(request: Request, settings: GatewaySettings) -> str:
    return client_ip(request, settings.trusted_proxies)


async def _accept_email(
    bus: Bus, settings: GatewaySettings, rpc: Rpc[Any, Any], body: p.EmailBody, request: Request
) -> Accepted:
    """Ask auth to send a mail to ``body.email``; 202 whether or not it names an account."""
    await _call(bus, settings, rpc, p.EmailRequest(email=body.email, client_ip=_ip(request, settings)))
    return Accepted()


# --- accounts and sessions ------------------------------------------------------------------


@router.post("/auth/register", status_code=201, response_model=p.RegisterReply, responses=errors(409, 429))
async def register(body: p.RegisterBody, request: Request, bus: BusDep, settings: SettingsDep) -> Any:
    req = p.RegisterRequest(**body.model_dump(), client_ip=_ip(request, settings))
    return await _call(bus, settings, p.AUTH_REGISTER, req)


@router.post("/auth/verify", response_model=p.VerifyReply, responses=errors(400, 409))
async def verify(body: p.VerifyBody, bus: BusDep, settings: SettingsDep) -> Any:
    return await _call(bus, settings, p.AUTH_VERIFY, body)


@router.post("/auth/verify/resend", status_code=202, response_model=Accepted, responses=errors(429))
async def resend_verification(body: p.EmailBody, request: Request, bus: BusDep, settings: SettingsDep) -> Any:
    return await _accept_email(bus, settings, p.AUTH_VERIFY_RESEND, body, request)


@router.post("/auth/login", response_model=p.TokenReply, responses=errors(401, 403, 429))
async def login(
    body: p.LoginBody, request: Request, response: Response, bus: BusDep, settings: SettingsDep
) -> Any:
    req = p.LoginRequest(**body.model_dump(), client_ip=_ip(request, settings))
    return _with_cookie(await _call(bus, settings, p.AUTH_LOGIN, req), response, settings)


def _with_cookie(reply: p.TokenReply, response: Response, settings: GatewaySettings) -> p.TokenReply:
    """Also hand the refresh token to a browser as its HttpOnly cookie (cookies.py)."""
    if reply.refresh_token:
        set_refresh_cookie(response, reply.refresh_token, settings)
    return reply


@router.post("/auth/refresh", response_model=p.TokenReply, responses=errors(401, 403, 429))
async def refresh(
    request: Request,
    response: Response,
    bus: BusDep,
    settings: SettingsDep,
    body: p.RefreshBody | None = None,
) -> Any:
    """Rotate the refresh token from the JSON body (SDK, CLI) or else the cookie (web client)."""
    token = body.refresh_token if body else refresh_cookie(request)
    if token is None:
        raise Unauthorized("send a refresh token", code="missing_token")
    try:
        req = p.RefreshRequest(refresh_token=token, client_ip=_ip(request, settings))
    except ValidationError:
        raise Unauthorized("the refresh token is not valid", code="invalid_refresh_token") from None
    try:
        reply: p.TokenReply = await _call(bus, settings, p.AUTH_REFRESH, req)
    except Unauthorized as exc:
        if body is None:
            exc.headers["Set-Cookie"] = clearing_header(settings)  # a dead cookie is not sent again
        raise
    _with_cookie(reply, response, settings)
    return reply if body else reply.model_copy(update={"refresh_token": None})


@router.post("/auth/logout", status_code=204)
async def logout(
    user: OptionalUser, request: Request, bus: BusDep, settings: SettingsDep, body: p.LogoutBody | None = None
) -> Response:
    """End the bearer's session, else the one of the refresh token (body, else cookie)."""
    refresh_token = (body.refresh_token if body else None) or _cookie_token(request)
    if user is None and refresh_token is None:
        raise Unauthorized("send a bearer token or a refresh token", code="missing_token")
    req = p.LogoutRequest(
        refresh_token=refresh_token,
        user_id=user.user_id if user else None,
        session_id=user.session_id if user else None,
    )
    await _call(bus, settings, p.AUTH_LOGOUT, req)
    if user is not None:
        # this gateway drops the token at once; the others hear auth's revocation event
        until = int(time.time()) + 24 * 3600
        request.app.state.token_verifier.revoke(
            [p.RevokedSession(session_id=user.session_id, expires_at=until)]
        )
    done = Response(status_code=204)
    clear_refresh_cookie(done, settings)
    return done


def _cookie_token(request: Request) -> str | None:
    """The cookie's refresh token when it is well-formed (a mangled cookie is just absent)."""
    token = refresh_cookie(request)
    try:
        return p.LogoutBody(refresh_token=token).refresh_token if token else None
    except ValidationError:
        return None


@router.get("/auth/me", response_model=p.UserPublic, responses=errors(404))
async def me(user: CurrentUser, bus: BusDep, settings: SettingsDep) -> Any:
    return await _call(bus, settings, p.AUTH_ME, p.UserRef(user_id=user.user_id))


@router.post("/auth/reauth", response_model=p.ReauthReply, responses=errors(403, 429))
async def reauth(
    body: p.ReauthBody, user: CurrentUser, request: Request, bus: BusDep, settings: SettingsDep
) -> Any:
    """Give the credentials again (password, or the linked wallet's signature; plus TOTP when on)
    for a reauth token: send it as ``X-Reauth-Token`` to the routes that change the account."""
    req = p.ReauthRequest(
        **body.model_dump(),
        user_id=user.user_id,
        session_id=user.session_id,
        client_ip=_ip(request, settings),
    )
    return await _call(bus, settings, p.AUTH_REAUTH, req)


@router.post("/auth/password/change", status_code=204, responses=errors(404, 422))
async def password_change(
    body: p.PasswordChangeBody, user: RecentUser, request: Request, bus: BusDep, settings: SettingsDep
) -> Response:
    """Set a new password; every other session of the account ends."""
    req = p.PasswordChangeRequest(
        password=body.password,
        user_id=user.user_id,
        session_id=user.session_id,
        client_ip=_ip(request, settings),
    )
    await _call(bus, settings, p.AUTH_PASSWORD_CHANGE, req)
    return Response(status_code=204)


@router.post("/auth/mfa/setup", response_model=p.MfaSetupReply, responses=errors(404, 409))
async def mfa_setup(user: RecentUser, bus: BusDep, settings: SettingsDep) -> Any:
    return await _call(bus, settings, p.AUTH_MFA_SETUP, p.UserRef(user_id=user.user_id))


@router.post("/auth/mfa/enable", response_model=p.MfaEnableReply, responses=errors(404, 409, 429))
async def mfa_enable(
    body: p.MfaCodeBody, user: RecentUser, request: Request, bus: BusDep, settings: SettingsDep
) -> Any:
    """Turn TOTP on; every other session of the account ends."""
    req = p.MfaCodeRequest(
        code=body.code, user_id=user.user_id, session_id=user.session_id, client_ip=_ip(request, settings)
    )
    return await _call(bus, settings, p.AUTH_MFA_ENABLE, req)


@router.post("/auth/mfa/disable", response_model=p.MfaStatusReply, responses=errors(404, 409, 429))
async def mfa_disable(
    body: p.MfaCodeBody, user: RecentUser, request: Request, bus: BusDep, settings: SettingsDep
) -> Any:
    req = p.MfaCodeRequest(code=body.code, user_id=user.user_id, client_ip=_ip(request, settings))
    return await _call(bus, settings, p.AUTH_MFA_DISABLE, req)


@router.get("/auth/siwe/nonce", response_model=p.SiweNonceReply, responses=errors(429))
async def siwe_nonce(request: Request, bus: BusDep, settings: SettingsDep) -> Any:
    req = p.SiweNonceRequest(client_ip=_ip(request, settings))
    return await _call(bus, settings, p.AUTH_SIWE_NONCE, req)


@router.post("/auth/siwe", response_model=p.TokenReply, responses=errors(403, 404, 409, 429))
async def siwe(
    body: p.SiweBody,
    user: OptionalUser,
    request: Request,
    response: Response,
    bus: BusDep,
    settings: SettingsDep,
    reauth_token: ReauthHeader = None,
) -> Any:
    """Log in with a linked wallet; with a bearer token (and a reauth token), link the wallet."""
    if user is not None:
        await request.app.state.token_verifier.verify_reauth(reauth_token or "", user)
    req = p.SiweRequest(
        **body.model_dump(), user_id=user.user_id if user else None, client_ip=_ip(request, settings)
    )
    return _with_cookie(await _call(bus, settings, p.AUTH_SIWE, req), response, settings)


@router.delete("/auth/siwe", response_model=p.UserPublic, responses=errors(404, 409))
async def siwe_unlink(user: RecentUser, request: Request, bus: BusDep, settings: SettingsDep) -> Any:
    """Unlink the account's wallet: it no longer logs in."""
    req = p.SessionRef(user_id=user.user_id, session_id=user.session_id, client_ip=_ip(request, settings))
    return await _call(bus, settings, p.AUTH_SIWE_UNLINK, req)


@router.post("/auth/password/reset-request", status_code=202, response_model=Accepted, responses=errors(429))
async def password_reset_request(
    body: p.EmailBody, request: Request, bus: BusDep, settings: SettingsDep
) -> Any:
    return await _accept_email(bus, settings, p.AUTH_RESET_REQUEST, body, request)


@router.post("/auth/password/reset", status_code=204, responses=errors(400))
async def password_reset(body: p.PasswordResetBody, bus: BusDep, settings: SettingsDep) -> Response:
    await _call(bus, settings, p.AUTH_RESET, body)
    return Response(status_code=204)


# --- administration ------------------------------------------------------------------------


@router.get("/admin/users", response_model=p.AdminUsersReply, tags=["admin"])
async def admin_users(
    admin: AdminUser,
    bus: BusDep,
    settings: SettingsDep,
    status: Literal["pending", "active", "disabled", "rejected", "unverified"] | None = None,
) -> Any:
    return await _call(
        bus, settings, p.AUTH_ADMIN_USERS, p.AdminUsersRequest(actor_id=admin.user_id, status=status)
    )


@router.post(
    "/admin/users/{user_id}/{action}", response_model=p.UserPublic, tags=["admin"], responses=errors(409)
)
async def admin_action(
    user_id: UserIdPath,
    action: Literal["approve", "reject", "disable", "enable"],
    admin: AdminUser,
    request: Request,
    bus: BusDep,
    settings: SettingsDep,
) -> Any:
    req = p.AdminActionRequest(
        actor_id=admin.user_id, user_id=user_id, action=action, client_ip=_ip(request, settings)
    )
    return await _call(bus, settings, p.AUTH_ADMIN_ACTION, req)


@router.put("/admin/users/{user_id}/role", response_model=p.UserPublic, tags=["admin"], responses=errors(409))
async def admin_role(
    user_id: UserIdPath,
    body: p.RoleBody,
    admin: AdminUser,
    request: Request,
    bus: BusDep,
    settings: SettingsDep,
) -> Any:
    req = p.AdminRoleRequest(
        role=body.role, actor_id=admin.user_id, user_id=user_id, client_ip=_ip(request, settings)
    )
    return await _call(bus, settings, p.AUTH_ADMIN_ROLE, req)


@router.post("/admin/signing-keys/rotate", response_model=p.JwksReply, tags=["admin"])
async def rotate_signing_key(admin: AdminUser, bus: BusDep, settings: SettingsDep) -> Any:
    return await _call(bus, settings, p.AUTH_JWKS_ROTATE, p.RotateKeyRequest(actor_id=admin.user_id))


@router.get("/admin/audit", response_model=p.AuditReply, tags=["admin"])
async def admin_audit(
    admin: AdminUser,
    bus: BusDep,
    settings: SettingsDep,
    type: Annotated[str | None, Query(max_length=64)] = None,
    user_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    req = p.AuditListRequest(actor_id=admin.user_id, type=type, user_id=user_id, since=since, limit=limit)
    events: p.AuditListReply = await _call(bus, settings, p.AUTH_AUDIT_LIST, req)
    entries = [LogEntry(kind="audit", id=e.id, digest=e.digest, at=e.at) for e in events.events]
    proofs = await proofs_for(bus, entries)
    return p.AuditReply(
        events=[
            p.AuditEventWithProof(**e.model_dump(), proof_status=proofs[e.id].status, proof=proofs[e.id])
            for e in events.events
        ]
    )
