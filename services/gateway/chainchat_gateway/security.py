"""Who is calling: the gateway verifies access tokens locally (JWKS from auth, cached).

Routes depend on ``CurrentUser`` (any logged-in user) or ``AdminUser``. ``TokenVerifier`` checks
an EdDSA JWT against auth's public keys without a NATS round trip per request; it re-fetches the
JWKS when it meets an unknown ``kid`` (at most once per few seconds) and drops tokens of sessions
auth has revoked (``Subject.AUTH_REVOKED`` events, kept until those tokens would expire anyway).
``setup`` installs it on the app with its event subscriptions and its periodic re-sync.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Annotated, Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import Depends, FastAPI, Header, Request
from pydantic import BaseModel, ValidationError

from chainchat_gateway.ratelimit import LocalLimiter
from chainchat_protocol.auth import (
    AUDIENCE,
    AUTH_JWKS,
    AUTH_REVOKED_LIST,
    ISSUER,
    JWKS_CHANGED,
    REAUTH_AUDIENCE,
    REAUTH_HEADER,
    JwksChanged,
    RevokedSession,
    SessionsRevoked,
)
from chainchat_protocol.b64 import B64Error, b64d_exact
from chainchat_protocol.errors import ChainChatError, Forbidden, Unauthorized, Unavailable
from chainchat_protocol.rpc import Empty
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger
from chainchat_service.loops import Backoff
from chainchat_service.runtime import ServiceRuntime

log = get_logger(__name__)

REQUIRED_CLAIMS = ["iss", "aud", "sub", "role", "sid", "jti", "iat", "exp"]
REAUTH_CLAIMS = ["iss", "aud", "sub", "sid", "jti", "iat", "exp"]
LEEWAY_S = 5
#: keys and revocations are loaded again this often (rotations and revocation events missed
#: while this gateway was disconnected)
SYNC_INTERVAL_S = 30.0


class Principal(BaseModel):
    """The verified claims of an access token."""

    user_id: str
    role: Literal["admin", "member"]
    session_id: str
    token_id: str


def _invalid(message: str = "the access token is not valid") -> Unauthorized:
    return Unauthorized(message, code="invalid_token")


class TokenVerifier:
    """Local verification of access tokens with auth's JWKS and the revoked-session set."""

    def __init__(self, bus: Bus, *, refetches: int = 5, per_seconds: int = 10) -> None:
        self.bus = bus
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._revoked: dict[str, float] = {}
        self._fetch_lock = asyncio.Lock()
        # forged kids must not turn every request into a NATS round trip; rotations also
        # arrive as an event, so a refused re-fetch delays a new key only briefly
        self._refetch = LocalLimiter(refetches, per_seconds)
        # token -> (principal, exp): an Ed25519 check costs ~100 µs here and a client sends the
        # same token with every request until it expires; revocation is still checked each time
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self.cache_size = 10_000

    async def refresh_keys(self) -> None:
        """Fetch auth's JWKS over NATS and replace the cached keys."""
        async with self._fetch_lock:
            jwks = await self.bus.request(AUTH_JWKS, Empty(), timeout=3.0)
            keys: dict[str, Ed25519PublicKey] = {}
            for jwk in jwks.keys:
                try:
                    keys[jwk.kid] = Ed25519PublicKey.from_public_bytes(b64d_exact(jwk.x, 32))
                except (B64Error, ValueError):
                    log.warning("jwks_bad_key", kid=jwk.kid)
            if keys.keys() != self._keys.keys():
                log.info("jwks_loaded", kids=sorted(keys))
                self._verified.clear()  # a key left the set: its tokens must be checked again
            self._keys = keys

    async def refresh_revocations(self) -> None:
        """Load sessions revoked recently (events sent while this gateway was away)."""
        reply = await self.bus.request(AUTH_REVOKED_LIST, Empty(), timeout=3.0)
        self.revoke(reply.sessions)

    async def sync(self) -> float:
        """Load keys and revocations; a step of the ``gateway-verifier-sync`` loop (raises while
        auth does not answer, so the loop retries with back-off until it does)."""
        await self.refresh_keys()
        await self.refresh_revocations()
        return SYNC_INTERVAL_S

    async def subscribe(self, bus: Bus) -> None:
        """Hear revocations and key rotations at once. No queue group: every gateway must hear
        every one of them."""
        await bus.subscribe(Subject.AUTH_REVOKED, SessionsRevoked, self._on_revoked)
        await bus.subscribe(JWKS_CHANGED, JwksChanged, self._on_jwks_changed)

    async def _on_revoked(self, event: SessionsRevoked) -> None:
        self.revoke(event.sessions)
        log.info("sessions_revoked", count=len(event.sessions), reason=event.reason)

    async def _on_jwks_changed(self, _: JwksChanged) -> None:
        try:
            await self.refresh_keys()
        except ChainChatError as exc:
            log.warning("jwks_refresh_failed", reason=exc.code)

    def revoke(self, sessions: list[RevokedSession]) -> None:
        """Reject the sessions' access tokens until they would have expired anyway."""
        now = time.time()
        for s in sessions:
            self._revoked[s.session_id] = max(self._revoked.get(s.session_id, 0.0), float(s.expires_at))
        for sid in [sid for sid, until in self._revoked.items() if until < now]:
            del self._revoked[sid]

    def is_revoked(self, session_id: str) -> bool:
        until = self._revoked.get(session_id)
        return until is not None and until >= time.time()

    async def _key_for(self, kid: str) -> Ed25519PublicKey:
        key = self._keys.get(kid)
        if key is not None:
            return key
        # an unknown kid is either a rotation we have not seen or a forgery: look once, rate-limited
        if not self._keys or self._refetch.allow("jwks"):
            try:
                await self.refresh_keys()
            except ChainChatError as exc:
                if not self._keys:
                    raise Unavailable("cannot verify tokens right now", code="auth_unavailable") from exc
        key = self._keys.get(kid)
        if key is None:
            raise _invalid()
        return key

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; 401 ``invalid_token`` / ``token_expired`` /
        ``token_revoked`` otherwise."""
        cached = self._verified.get(token)
        if cached is not None and cached[1] + LEEWAY_S >= time.time():
            self._verified.move_to_end(token)
            principal = cached[0]
        else:
            principal = await self._verify_signature(token)
        if self.is_revoked(principal.session_id):
            raise Unauthorized("this session has ended; sign in again", code="token_revoked")
        return principal

    async def _verify_signature(self, token: str) -> Principal:
        self._verified.pop(token, None)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _invalid() from None
        kid = header.get("kid")
        if header.get("alg") != "EdDSA" or not isinstance(kid, str):
            raise _invalid()
        claims = self._decode(token, await self._key_for(kid))
        try:
            principal = Principal(
                user_id=claims["sub"], role=claims["role"], session_id=claims["sid"], token_id=claims["jti"]
            )
        except (ValidationError, KeyError):
            raise _invalid() from None
        self._verified[token] = (principal, float(claims["exp"]))
        if len(self._verified) > self.cache_size:
            self._verified.popitem(last=False)
        return principal

    async def verify_reauth(self, token: str, principal: Principal) -> None:
        """Accept a reauth token only for the caller's own, live session (403 ``reauth_required``
        otherwise: the client asks for the password and tries again)."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            kid = None
        if not isinstance(kid, str):
            raise _reauth_required()
        try:
            claims = self._decode(
                token, await self._key_for(kid), audience=REAUTH_AUDIENCE, required=REAUTH_CLAIMS, leeway=0
            )
        except Unauthorized:
            raise _reauth_required() from None
        if claims["sub"] != principal.user_id or claims["sid"] != principal.session_id:
            raise _reauth_required()

    @staticmethod
    def _decode(
        token: str,
        key: Ed25519PublicKey,
        *,
        audience: str = AUDIENCE,
        required: list[str] = REQUIRED_CLAIMS,
        leeway: int = LEEWAY_S,
    ) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["EdDSA"],
                audience=audience,
                issuer=ISSUER,
                leeway=leeway,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise _invalid() from None
        return claims


async def setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Install the token verifier; once NATS is up, its subscriptions and its re-sync loop."""
    verifier = TokenVerifier(runtime.bus)
    app.state.token_verifier = verifier

    async def on_connected(bus: Bus) -> None:
        await verifier.subscribe(bus)
        runtime.supervise("gateway-verifier-sync", verifier.sync, backoff=Backoff(1.0, 10.0))

    runtime.on_connected(on_connected)


def _reauth_required() -> Forbidden:
    return Forbidden(
        f"this needs your password again: POST /api/v1/auth/reauth, then send {REAUTH_HEADER}",
        code="reauth_required",
    )


def bearer_token(request: Request) -> str | None:
    """The bearer token of the request, if it has an ``Authorization: Bearer`` header."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def current_user(request: Request) -> Principal:
    verifier = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        raise Unauthorized("authentication is not available yet", code="unauthorized")
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing bearer token", code="missing_token")
    principal: Principal = await verifier.verify(token)
    return principal


async def optional_user(request: Request) -> Principal | None:
    """The caller if a bearer token is present (and valid: a bad token is still a 401)."""
    if bearer_token(request) is None:
        return None
    return await current_user(request)


async def admin_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    if user.role != "admin":
        raise Forbidden("admin role required", code="admin_required")
    return user


ReauthHeader = Annotated[
    str | None,
    Header(
        alias=REAUTH_HEADER,
        max_length=4096,
        description="a reauth token from POST /auth/reauth (or the login reply) of this session",
    ),
]


async def reauthenticated(
    request: Request, user: Annotated[Principal, Depends(current_user)], token: ReauthHeader = None
) -> bool:
    """Whether the request carries a valid reauth token of the caller's session."""
    if not token:
        return False
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        await verifier.verify_reauth(token, user)
    except Forbidden:
        return False
    return True


async def recent_user(
    user: Annotated[Principal, Depends(current_user)], ok: Annotated[bool, Depends(reauthenticated)]
) -> Principal:
    """The caller, who proved again just now that it holds the account's credentials."""
    if not ok:
        raise _reauth_required()
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]
RecentUser = Annotated[Principal, Depends(recent_user)]
Reauthenticated = Annotated[bool, Depends(reauthenticated)]
OptionalUser = Annotated[Principal | None, Depends(optional_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]
