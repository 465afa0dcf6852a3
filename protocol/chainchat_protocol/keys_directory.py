"""User and public-key directory schemas (SPEC §4, §7 "Directory and keys"): the ``auth.users.*``
and ``auth.keys.*`` subjects other services call, and the ``key_changed`` event.

``chainchat_protocol.auth`` re-exports every name here, so either import path works.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from chainchat_protocol.b64 import b64d_exact
from chainchat_protocol.envelope import Suite
from chainchat_protocol.keys import KEY_ID_PATTERN, PUBLIC_KEY_SIZE
from chainchat_protocol.log_entry import LogEntry
from chainchat_protocol.proof import ProofObject
from chainchat_protocol.rpc import Empty, Rpc

__all__ = [
    "AUTH_KEYS_DEVICES", "AUTH_KEYS_GET", "AUTH_KEYS_MINE", "AUTH_KEYS_PUBLISH", "AUTH_KEYS_REVOKE",
    "AUTH_USERS_GET", "AUTH_USERS_SEARCH", "DeviceKey", "DevicesReply", "DevicesRequest", "KeyChanged",
    "KeyId", "OwnDevice", "OwnDevicesReply", "PublicKeysReply", "PublishKeyBody", "PublishKeyReply",
    "PublishKeyRequest", "RevokedDeviceKey", "RevokeKeyRequest",
    "Role", "UserHit", "UserId", "UserKeysReply", "UserRef", "UserSearchReply", "UserSearchRequest",
    "UserStatus", "UserSummary", "UsersGetReply", "UsersGetRequest",
]  # fmt: skip

Role = Literal["admin", "member"]
UserStatus = Literal["pending_verification", "pending_approval", "active", "disabled", "rejected"]
KeyId = Annotated[str, StringConstraints(pattern=KEY_ID_PATTERN)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _raw_public_key(value: str) -> str:
    b64d_exact(value, PUBLIC_KEY_SIZE)  # canonical unpadded base64url of exactly 32 bytes
    return value


PublicKeyB64 = Annotated[
    str, StringConstraints(min_length=43, max_length=43), AfterValidator(_raw_public_key)
]


def _clean_label(value: str) -> str:
    label = unicodedata.normalize("NFC", value).strip()
    if not label or any(unicodedata.category(ch).startswith("C") for ch in label):
        raise ValueError("label must be printable text")
    return label


# what the owner calls a device ("Firefox on the work laptop"); only the owner ever sees it
DeviceLabel = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_clean_label)]


class UserRef(BaseModel):
    user_id: UserId


class UserSummary(BaseModel):
    """What other services need about a user (``auth.users.get.v1``)."""

    id: str
    display_name: str
    status: UserStatus
    role: Role


class UserHit(BaseModel):
    """A search result: no e-mail addresses of others."""

    user_id: str
    display_name: str


class UsersGetRequest(BaseModel):
    user_ids: list[UserId] = Field(min_length=1, max_length=1000)


class UsersGetReply(BaseModel):
    users: list[UserSummary]


class UserSearchRequest(BaseModel):
    q: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    limit: int = Field(default=20, ge=1, le=20)


class UserSearchReply(BaseModel):
    users: list[UserHit]


class PublishKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    x25519_public: PublicKeyB64
    ed25519_public: PublicKeyB64
    suite_support: list[Suite] = Field(min_length=1, max_length=8)
    label: DeviceLabel | None = None


class PublishKeyRequest(PublishKeyBody):
    user_id: UserId
    # the gateway checked a reauth token: required for a new key when the account has a live one
    reauthenticated: bool = False


class PublishKeyReply(BaseModel):
    key_id: str
    created: bool


class RevokeKeyRequest(BaseModel):
    user_id: UserId
    key_id: KeyId


class DeviceKey(BaseModel):
    key_id: str
    x25519_public: str
    ed25519_public: str
    suite_support: list[str]
    created_at: datetime


class RevokedDeviceKey(DeviceKey):
    """A key that is no longer a device of its user: never sealed to, kept to verify history."""

    revoked_at: datetime


class OwnDevice(BaseModel):
    """One of the caller's devices as ``GET /keys/me`` lists it (revoked ones included)."""

    key_id: str
    label: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None


class OwnDevicesReply(BaseModel):
    devices: list[OwnDevice]


class UserKeysReply(BaseModel):
    user_id: str
    keys: list[DeviceKey]
    revoked_keys: list[RevokedDeviceKey] = Field(default_factory=list)
    # the ``key`` log entry of each key, by key id: what a proof is asked for and proves
    entries: dict[str, LogEntry] = Field(default_factory=dict)


class DevicesRequest(BaseModel):
    user_ids: list[UserId] = Field(min_length=1, max_length=1000)


class DevicesReply(BaseModel):
    """Current (non-revoked) device keys per user id; unknown users map to an empty list."""

    devices: dict[str, list[DeviceKey]]


class KeyChanged(BaseModel):
    """Event on ``Subject.KEY_CHANGED`` when a user publishes or revokes a device key."""

    user_id: str
    key_id: str
    revoked: bool = False
    # for a new device: its label and when it was added (RFC 3339), for the owner's other devices
    label: str | None = None
    at: str | None = None


class PublicKeysReply(BaseModel):
    """Body of ``GET /keys/{user_id}``: the current keys, the revoked ones (to verify history, never
    to seal to) and, per log entry id, the proof of its ``key`` entry: ``<key_id>`` for a key's
    publication, ``<key_id>:revoked`` for its revocation."""

    user_id: str
    keys: list[DeviceKey]
    revoked_keys: list[RevokedDeviceKey] = Field(default_factory=list)
    proofs: dict[str, ProofObject]


# --- subjects ----------------------------------------------------------------------------------

AUTH_USERS_GET = Rpc("auth.users.get.v1", UsersGetRequest, UsersGetReply)
AUTH_USERS_SEARCH = Rpc("auth.users.search.v1", UserSearchRequest, UserSearchReply)
AUTH_KEYS_PUBLISH = Rpc("auth.keys.publish.v1", PublishKeyRequest, PublishKeyReply)
AUTH_KEYS_REVOKE = Rpc("auth.keys.revoke.v1", RevokeKeyRequest, Empty)
AUTH_KEYS_GET = Rpc("auth.keys.get.v1", UserRef, UserKeysReply)
AUTH_KEYS_MINE = Rpc("auth.keys.mine.v1", UserRef, OwnDevicesReply)
AUTH_KEYS_DEVICES = Rpc("auth.keys.devices.v1", DevicesRequest, DevicesReply)
