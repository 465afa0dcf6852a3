"""What every auth operation needs, built once at start-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from chainchat_auth.models import User
from chainchat_auth.passwords import Passwords
from chainchat_auth.ratelimit import Limit, RateLimiter
from chainchat_auth.settings import AuthSettings
from chainchat_auth.signing import Signer
from chainchat_auth.vault import SecretVault
from chainchat_protocol.auth import AuthErrorCode
from chainchat_protocol.errors import Forbidden
from chainchat_service.db import Database


def _noop() -> None:
    return None


@dataclass
class AuthContext:
    settings: AuthSettings
    db: Database
    passwords: Passwords
    signer: Signer
    limiter: RateLimiter
    vault: SecretVault
    # wakes the outbox relay and the mail loop after a commit that queued something
    after_commit: Callable[[], None] = field(default=_noop)

    def limit(self, name: str, *, per_ip: bool = False) -> Limit:
        """The configured limit ``rate_<name>``; per-IP sign-up limits are relaxed in tests."""
        factor = 1
        if per_ip and self.settings.environment == "test" and not name.startswith("login"):
            factor = self.settings.test_ip_limit_factor
        return Limit.parse(getattr(self.settings, f"rate_{name}"), factor=factor)


_STATUS_ERRORS = {
    "pending_verification": ("verify your e-mail address first", AuthErrorCode.EMAIL_NOT_VERIFIED),
    "pending_approval": (
        "your account is waiting for an administrator's approval",
        AuthErrorCode.PENDING_APPROVAL,
    ),
    "disabled": ("this account is disabled", AuthErrorCode.ACCOUNT_DISABLED),
    "rejected": ("this account was not approved", AuthErrorCode.ACCOUNT_REJECTED),
}


def ensure_active(user: User) -> None:
    """Raise the SPEC's 403 for an account that may not sign in."""
    if user.status != "active":
        message, code = _STATUS_ERRORS.get(
            user.status, ("this account cannot sign in", AuthErrorCode.ACCOUNT_DISABLED)
        )
        raise Forbidden(message, code=code)
