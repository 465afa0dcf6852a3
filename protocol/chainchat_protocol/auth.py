"""Auth domain schemas: HTTP bodies, NATS request/reply models and the ``auth.*`` subjects.

HTTP bodies (``*Body``) are what a client sends to the gateway; each NATS request extends its body
with what only the gateway knows (the verified caller, the client IP). Validation lives here once,
so the gateway and the auth service reject the same input.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

# re-exported (listed in __all__): one import path for the whole auth domain
from chainchat_protocol.keys_directory import (
    AUTH_KEYS_DEVICES,
    AUTH_KEYS_GET,
    AUTH_KEYS_MINE,
    AUTH_KEYS_PUBLISH,
    AUTH_KEYS_REVOKE,
    AUTH_USERS_GET,
    AUTH_USERS_SEARCH,
    DeviceKey,
    DevicesReply,
    DevicesRequest,
    KeyChanged,
    KeyId,
    OwnDevice,
    OwnDevicesReply,
    PublicKeysReply,
    PublishKeyBody,
    PublishKeyReply,
    PublishKeyRequest,
    RevokedDeviceKey,
    RevokeKeyRequest,
    Role,
    UserHit,
    UserId,
    UserKeysReply,
    UserRef,
    UserSearchReply,
    UserSearchRequest,
    UsersGetReply,
    UsersGetRequest,
    UserStatus,
    UserSummary,
)
from chainchat_protocol.proof import ProofObject
from chainchat_protocol.rpc import Empty, Rpc

__all__ = [  # the directory names are re-exported too
    "AUTH_ADMIN_ACTION", "AUTH_ADMIN_ROLE", "AUTH_ADMIN_USERS", "AUTH_AUDIT_LIST", "AUTH_JWKS",
    "AUTH_JWKS_ROTATE", "AUTH_LOGIN", "AUTH_LOGOUT", "AUTH_ME", "AUTH_MFA_DISABLE", "AUTH_MFA_ENABLE",
    "AUTH_MFA_SETUP", "AUTH_PASSWORD_CHANGE", "AUTH_REAUTH", "AUTH_REFRESH", "AUTH_REGISTER",
    "AUTH_RESET", "AUTH_RESET_REQUEST", "AUTH_REVOKED_LIST", "AUTH_SIWE", "AUTH_SIWE_NONCE",
    "AUTH_SIWE_UNLINK", "AUTH_VERIFY", "AUTH_VERIFY_RESEND", "AUDIENCE", "ISSUER", "JWKS_CHANGED",
    "REAUTH_AUDIENCE", "REAUTH_HEADER", "AuditEventWithProof", "AuditReply", "AuthErrorCode",
    "normalize_email",
    # from keys_directory
    "AUTH_KEYS_DEVICES", "AUTH_KEYS_GET", "AUTH_KEYS_MINE", "AUTH_KEYS_PUBLISH", "AUTH_KEYS_REVOKE",
    "AUTH_USERS_GET", "AUTH_USERS_SEARCH", "DeviceKey", "DevicesReply", "DevicesRequest", "KeyChanged",
    "KeyId", "OwnDevice", "OwnDevicesReply", "PublicKeysReply", "PublishKeyBody", "PublishKeyReply",
    "PublishKeyRequest", "RevokedDeviceKey", "RevokeKeyRequest",
    "Role", "UserHit", "UserId", "UserKeysReply", "UserRef", "UserSearchReply", "UserSearchRequest",
    "UserStatus", "UserSummary", "UsersGetReply", "UsersGetRequest",
]  # fmt: skip

ISSUER = "chainchat-auth"
AUDIENCE = "chainchat"
# a reauth token is a JWT for this audience: an access-token check (audience AUDIENCE) refuses it
REAUTH_AUDIENCE = "chainchat-reauth"
REAUTH_HEADER = "X-Reauth-Token"


class AuthErrorCode:
    """Stable error codes of accounts, sessions, tokens, MFA, wallets and device keys (clients
    switch on them). The gateway answers the token codes too: it verifies the access tokens."""

    # accounts and sign-in
    EMAIL_TAKEN = "email_taken"
    WEAK_PASSWORD = "weak_password"
    INVALID_TOKEN = "invalid_token"
    INVALID_CREDENTIALS = "invalid_credentials"
    EMAIL_NOT_VERIFIED = "email_not_verified"
    PENDING_APPROVAL = "pending_approval"
    ACCOUNT_DISABLED = "account_disabled"
    ACCOUNT_REJECTED = "account_rejected"
    USER_NOT_FOUND = "user_not_found"
    # sessions and tokens
    MISSING_TOKEN = "missing_token"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_REVOKED = "token_revoked"
    INVALID_REFRESH_TOKEN = "invalid_refresh_token"
    REFRESH_TOKEN_REUSED = "refresh_token_reused"
    SESSION_REVOKED = "session_revoked"
    REAUTH_REQUIRED = "reauth_required"
    # two-factor authentication
    MFA_REQUIRED = "mfa_required"
    INVALID_MFA_CODE = "invalid_mfa_code"
    MFA_ALREADY_ENABLED = "mfa_already_enabled"
    MFA_SETUP_REQUIRED = "mfa_setup_required"
    MFA_NOT_ENABLED = "mfa_not_enabled"
    # Sign-In with Ethereum and linked wallets
    INVALID_SIWE = "invalid_siwe"
    SIWE_DOMAIN_MISMATCH = "siwe_domain_mismatch"
    SIWE_CHAIN_MISMATCH = "siwe_chain_mismatch"
    INVALID_NONCE = "invalid_nonce"
    WALLET_ALREADY_LINKED = "wallet_already_linked"
    WALLET_IN_USE = "wallet_in_use"
    WALLET_NOT_LINKED = "wallet_not_linked"
    # administration
    ADMIN_REQUIRED = "admin_required"
    LAST_ADMIN = "last_admin"
    INVALID_STATE = "invalid_state"
    # device keys
    KEY_IN_USE = "key_in_use"
    KEY_REVOKED = "key_revoked"
    KEY_NOT_FOUND = "key_not_found"
    TOO_MANY_DEVICES = "too_many_devices"


# Loose on purpose: full RFC 5322 is not worth it; the verification mail proves the address.
_EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def normalize_email(value: str) -> str:
    """Trim and lowercase an e-mail address; raise ``ValueError`` unless it looks like one."""
    email = value.strip().lower()
    if len(email) > 254 or _EMAIL_RE.fullmatch(email) is None or "." not in email.rsplit("@", 1)[1]:
        raise ValueError("not a valid e-mail address")
    return email


def _clean_display_name(value: str) -> str:
    name = unicodedata.normalize("NFC", value).strip()
    if not name or any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValueError("display_name must be printable text")
    return name


Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(normalize_email)]
ClientIp = Annotated[str, StringConstraints(max_length=64)]
# The upper bound keeps an attacker from making argon2 hash megabytes.
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
NewPassword = Annotated[str, StringConstraints(min_length=10, max_length=256)]
DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_clean_display_name)
]
OpaqueToken = Annotated[str, StringConstraints(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
OtpCode = Annotated[str, StringConstraints(min_length=6, max_length=32, pattern=r"^[A-Za-z0-9 -]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


# --- public user views -------------------------------------------------------------------------


class UserPublic(BaseModel):
    """The account as its owner (``GET /auth/me``) and admins see it; never a secret in here."""

    id: str
    email: str
    display_name: str
    role: Role
    status: UserStatus
    mfa_enabled: bool
    wallet_address: str | None = None
    created_at: datetime


# --- accounts ------------------------------------------------------------------------------------


class RegisterBody(_Body):
    email: Email
    password: NewPassword
    display_name: DisplayName


class RegisterRequest(RegisterBody):
    client_ip: ClientIp | None = None


class RegisterReply(BaseModel):
    user_id: str
    status: UserStatus


class VerifyBody(_Body):
    token: OpaqueToken


class VerifyReply(BaseModel):
    status: UserStatus


class EmailBody(_Body):
    email: Email


class EmailRequest(EmailBody):
    client_ip: ClientIp | None = None


class LoginBody(_Body):
    email: Email
    password: Password
    totp_code: OtpCode | None = None


class LoginRequest(LoginBody):
    client_ip: ClientIp | None = None


class TokenReply(BaseModel):
    access_token: str
    # null in the answer to a refresh that came by cookie: the new one is in the cookie only
    refresh_token: str | None
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    user: UserPublic
    # a login (all factors just given) is a recent authentication: the new session's reauth token,
    # so a fresh device can publish its key without asking again; never set by a refresh
    reauth_token: str | None = None


class RefreshBody(_Body):
    refresh_token: OpaqueToken


class RefreshRequest(RefreshBody):
    client_ip: ClientIp | None = None


class LogoutBody(_Body):
    refresh_token: OpaqueToken | None = None


class LogoutRequest(LogoutBody):
    """End a session: the bearer's session if known, else the refresh token's."""

    user_id: UserId | None = None
    session_id: str | None = None


class PasswordResetBody(_Body):
    token: OpaqueToken
    password: NewPassword


class PasswordChangeBody(_Body):
    password: NewPassword


class PasswordChangeRequest(PasswordChangeBody):
    """A new password for the caller; the gateway has checked a reauth token of this session."""

    user_id: UserId
    session_id: str
    client_ip: ClientIp | None = None


class SessionRef(BaseModel):
    """The caller and its session (the one a change keeps while it revokes the others)."""

    user_id: UserId
    session_id: str
    client_ip: ClientIp | None = None


# --- MFA -----------------------------------------------------------------------------------------


class MfaCodeBody(_Body):
    code: OtpCode


class MfaCodeRequest(MfaCodeBody):
    user_id: UserId
    # enabling MFA ends the account's other sessions; this one stays
    session_id: str | None = None
    client_ip: ClientIp | None = None


class MfaSetupReply(BaseModel):
    secret: str
    otpauth_uri: str


class MfaEnableReply(BaseModel):
    mfa_enabled: bool = True
    recovery_codes: list[str]


class MfaStatusReply(BaseModel):
    mfa_enabled: bool


# --- Sign-In with Ethereum ---------------------------------------------------------------------


class SiweNonceRequest(BaseModel):
    """A nonce for a wallet sign-in; ``client_ip`` for the per-IP limit (nonces are stored)."""

    client_ip: ClientIp | None = None


class SiweNonceReply(BaseModel):
    nonce: str


# An EIP-4361 message from our clients is ~300 characters; the siwe parser's cost grows faster than
# the length (4 KiB took seconds of auth's CPU), so the gateway refuses longer ones with a 422.
SIWE_MAX_MESSAGE = 1024


SiweMessageText = Annotated[str, StringConstraints(min_length=1, max_length=SIWE_MAX_MESSAGE)]
SiweSignature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]


class SiweBody(_Body):
    message: SiweMessageText
    signature: SiweSignature
    # wallet login asks for it when the account has TOTP on, exactly like password login
    totp_code: OtpCode | None = None


class SiweRequest(SiweBody):
    # set when the caller is logged in: link the wallet to this account
    user_id: UserId | None = None
    client_ip: ClientIp | None = None


# --- recent authentication (step-up) ----------------------------------------------------------


class ReauthBody(_Body):
    """``POST /auth/reauth``: the password, or a wallet signature (SIWE), plus TOTP when it is on."""

    password: Password | None = None
    totp_code: OtpCode | None = None
    siwe_message: SiweMessageText | None = None
    signature: SiweSignature | None = None

    @model_validator(mode="after")
    def _one_first_factor(self) -> ReauthBody:
        by_wallet = self.siwe_message is not None or self.signature is not None
        if by_wallet and (self.siwe_message is None or self.signature is None):
            raise ValueError("siwe_message and signature go together")
        if by_wallet == (self.password is not None):
            raise ValueError("send either password or siwe_message and signature")
        return self


class ReauthRequest(ReauthBody):
    user_id: UserId
    session_id: str
    client_ip: ClientIp | None = None


class ReauthReply(BaseModel):
    reauth_token: str
    expires_in: int


# --- signing keys and revocation ------------------------------------------------------------------


class Jwk(BaseModel):
    """An Ed25519 public key as a JWK (RFC 8037)."""

    kty: Literal["OKP"] = "OKP"
    crv: Literal["Ed25519"] = "Ed25519"
    alg: Literal["EdDSA"] = "EdDSA"
    use: Literal["sig"] = "sig"
    kid: str
    x: str


class JwksReply(BaseModel):
    keys: list[Jwk]


class RotateKeyRequest(BaseModel):
    actor_id: UserId


# core NATS event after a signing-key rotation: gateways re-fetch the JWKS at once
JWKS_CHANGED = "auth.jwks.changed.v1"


class JwksChanged(BaseModel):
    """Event on :data:`JWKS_CHANGED`; ``kid`` is the new signing key."""

    kid: str


class RevokedSession(BaseModel):
    session_id: str
    # unix time after which every access token of the session has expired anyway
    expires_at: int


class SessionsRevoked(BaseModel):
    """Event on ``Subject.AUTH_REVOKED``: gateways reject access tokens of these sessions."""

    user_id: str | None = None
    sessions: list[RevokedSession]
    reason: str


class RevokedListReply(BaseModel):
    sessions: list[RevokedSession]


# --- admin and audit ---------------------------------------------------------------------------


class AdminUsersRequest(BaseModel):
    actor_id: UserId  # auth checks, in its own database, that the actor is an active admin
    status: Literal["pending", "active", "disabled", "rejected", "unverified"] | None = None
    limit: int = Field(default=200, ge=1, le=1000)


class AdminUsersReply(BaseModel):
    users: list[UserPublic]


class AdminActionRequest(BaseModel):
    actor_id: UserId
    user_id: UserId
    action: Literal["approve", "reject", "disable", "enable"]
    client_ip: ClientIp | None = None


class RoleBody(_Body):
    role: Role


class AdminRoleRequest(RoleBody):
    actor_id: UserId
    user_id: UserId
    client_ip: ClientIp | None = None


AuditDetail = dict[str, str | int | bool | None]


class AuditEvent(BaseModel):
    """One security event; ``digest`` is what the ledger anchors (``audit`` log entry ``id``)."""

    id: str
    type: str
    user_id: str | None = None
    actor_id: str | None = None
    ip: str | None = None
    detail: AuditDetail = Field(default_factory=dict)
    at: str
    digest: str


class AuditListRequest(BaseModel):
    actor_id: UserId
    type: Annotated[str, StringConstraints(max_length=64)] | None = None
    user_id: UserId | None = None
    since: datetime | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class AuditListReply(BaseModel):
    events: list[AuditEvent]


class AuditEventWithProof(AuditEvent):
    """An event of ``GET /admin/audit``, with the ledger's proof of its ``audit`` entry."""

    proof_status: Literal["pending", "anchored"]
    proof: ProofObject


class AuditReply(BaseModel):
    """Body of ``GET /admin/audit``."""

    events: list[AuditEventWithProof]


# --- subjects ----------------------------------------------------------------------------------

AUTH_REGISTER = Rpc("auth.register.v1", RegisterRequest, RegisterReply)
AUTH_VERIFY = Rpc("auth.verify.v1", VerifyBody, VerifyReply)
AUTH_VERIFY_RESEND = Rpc("auth.verify.resend.v1", EmailRequest, Empty)
AUTH_LOGIN = Rpc("auth.login.v1", LoginRequest, TokenReply)
AUTH_REFRESH = Rpc("auth.refresh.v1", RefreshRequest, TokenReply)
AUTH_LOGOUT = Rpc("auth.logout.v1", LogoutRequest, Empty)
AUTH_ME = Rpc("auth.me.v1", UserRef, UserPublic)
AUTH_MFA_SETUP = Rpc("auth.mfa.setup.v1", UserRef, MfaSetupReply)
AUTH_MFA_ENABLE = Rpc("auth.mfa.enable.v1", MfaCodeRequest, MfaEnableReply)
AUTH_MFA_DISABLE = Rpc("auth.mfa.disable.v1", MfaCodeRequest, MfaStatusReply)
AUTH_SIWE_NONCE = Rpc("auth.siwe.nonce.v1", SiweNonceRequest, SiweNonceReply)
AUTH_SIWE = Rpc("auth.siwe.v1", SiweRequest, TokenReply)
AUTH_RESET_REQUEST = Rpc("auth.password.reset_request.v1", EmailRequest, Empty)
AUTH_RESET = Rpc("auth.password.reset.v1", PasswordResetBody, Empty)
AUTH_PASSWORD_CHANGE = Rpc("auth.password.change.v1", PasswordChangeRequest, Empty)
AUTH_REAUTH = Rpc("auth.reauth.v1", ReauthRequest, ReauthReply)
AUTH_SIWE_UNLINK = Rpc("auth.siwe.unlink.v1", SessionRef, UserPublic)
AUTH_JWKS = Rpc("auth.jwks.v1", Empty, JwksReply)
AUTH_JWKS_ROTATE = Rpc("auth.jwks.rotate.v1", RotateKeyRequest, JwksReply)
AUTH_REVOKED_LIST = Rpc("auth.session.revoked.list.v1", Empty, RevokedListReply)
AUTH_ADMIN_USERS = Rpc("auth.admin.users.v1", AdminUsersRequest, AdminUsersReply)
AUTH_ADMIN_ACTION = Rpc("auth.admin.action.v1", AdminActionRequest, UserPublic)
AUTH_ADMIN_ROLE = Rpc("auth.admin.role.v1", AdminRoleRequest, UserPublic)
AUTH_AUDIT_LIST = Rpc("auth.audit.list.v1", AuditListRequest, AuditListReply)
