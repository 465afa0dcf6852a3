"""Public API routes of the user and key directory (SPEC §7 "Directory and keys", §11 "Devices"):
user search and lookup, device keys (publish, list one's own, revoke) and a user's keys with the
proofs of their ``key`` log entries. They forward to the auth service over NATS.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import ValidationError

from chainchat_gateway.deps import BusDep, SettingsDep
from chainchat_gateway.openapi import errors
from chainchat_gateway.routes.ledger import proofs_for
from chainchat_gateway.security import CurrentUser, Reauthenticated, RecentUser
from chainchat_gateway.settings import GatewaySettings
from chainchat_protocol import auth as p
from chainchat_protocol.auth import AuthErrorCode
from chainchat_protocol.errors import NotFound
from chainchat_protocol.rpc import Rpc
from chainchat_service.bus import Bus

router = APIRouter(tags=["directory"])

UserIdPath = Annotated[str, Path(min_length=1, max_length=64)]
KeyIdPath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


async def _call(bus: Bus, settings: GatewaySettings, rpc: Rpc[Any, Any], req: Any) -> Any:
    return await bus.request(rpc, req, timeout=settings.rpc_timeout_s)


@router.get("/users", response_model=list[p.UserHit], tags=["directory"])
async def search_users(
    user: CurrentUser,
    bus: BusDep,
    settings: SettingsDep,
    q: Annotated[str, Query(min_length=1, max_length=100)],
) -> Any:
    reply: p.UserSearchReply = await _call(bus, settings, p.AUTH_USERS_SEARCH, p.UserSearchRequest(q=q))
    return reply.users


@router.get("/users/{user_id}", response_model=p.UserHit, tags=["directory"])
async def get_user(user_id: UserIdPath, user: CurrentUser, bus: BusDep, settings: SettingsDep) -> Any:
    """Display name of an active user (what clients show for a peer); 404 for anyone else."""
    try:
        request = p.UsersGetRequest(user_ids=[user_id])
    except ValidationError:
        raise NotFound("no such user", code=AuthErrorCode.USER_NOT_FOUND) from None
    reply: p.UsersGetReply = await _call(bus, settings, p.AUTH_USERS_GET, request)
    found = next((u for u in reply.users if u.id == user_id and u.status == "active"), None)
    if found is None:
        raise NotFound("no such user", code=AuthErrorCode.USER_NOT_FOUND)
    return p.UserHit(user_id=found.id, display_name=found.display_name)


@router.get("/keys/me", response_model=p.OwnDevicesReply, tags=["directory"])
async def own_devices(user: CurrentUser, bus: BusDep, settings: SettingsDep) -> Any:
    """The caller's devices (key id, label, when added, when revoked), revoked ones included."""
    return await _call(bus, settings, p.AUTH_KEYS_MINE, p.UserRef(user_id=user.user_id))


@router.put("/keys/me", response_model=p.PublishKeyReply, tags=["directory"], responses=errors(404, 409))
async def publish_key(
    body: p.PublishKeyBody, user: CurrentUser, recent: Reauthenticated, bus: BusDep, settings: SettingsDep
) -> Any:
    """Publish this device's keys (idempotent). A new key on an account that has a live one needs
    ``X-Reauth-Token`` (403 ``reauth_required``) and is announced to the owner."""
    req = p.PublishKeyRequest(**body.model_dump(), user_id=user.user_id, reauthenticated=recent)
    return await _call(bus, settings, p.AUTH_KEYS_PUBLISH, req)


@router.delete("/keys/me/{key_id}", status_code=204, tags=["directory"])
async def revoke_key(key_id: KeyIdPath, user: RecentUser, bus: BusDep, settings: SettingsDep) -> Response:
    """Revoke one of the caller's devices: never again a required recipient."""
    await _call(bus, settings, p.AUTH_KEYS_REVOKE, p.RevokeKeyRequest(user_id=user.user_id, key_id=key_id))
    return Response(status_code=204)


@router.get("/keys/{user_id}", response_model=p.PublicKeysReply, tags=["directory"])
async def user_keys(user_id: UserIdPath, user: CurrentUser, bus: BusDep, settings: SettingsDep) -> Any:
    reply: p.UserKeysReply = await _call(bus, settings, p.AUTH_KEYS_GET, p.UserRef(user_id=user_id))
    proofs = await proofs_for(bus, list(reply.entries.values()))
    return p.PublicKeysReply(
        user_id=reply.user_id, keys=reply.keys, revoked_keys=reply.revoked_keys, proofs=proofs
    )
