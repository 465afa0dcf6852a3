"""Password policy and argon2id hashing (off the event loop: argon2 releases the GIL)."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chainchat_protocol.auth import AuthErrorCode
from chainchat_protocol.errors import ValidationFailed

MIN_LENGTH = 10

# Well-known passwords of at least MIN_LENGTH characters (shorter ones fail the length rule).
# Compared case-insensitively; a breach corpus would be better, this stops the obvious.
COMMON_PASSWORDS = frozenset(
    """
    1234567890 0123456789 0987654321 1234567891 12345678910 123456789a a123456789 1111111111
    0000000000 123123123123 1122334455 1q2w3e4r5t 1qaz2wsx3edc zaq12wsxcde3 qwertyuiop qwertyuiop123
    qwerty1234 qwerty12345 qwerty123456 asdfghjkl1 asdfghjkl; zxcvbnm123 abcdefghij abcd123456
    password12 password123 password1234 password12345 password!1 passw0rd123 p@ssw0rd123 p@ssword123
    iloveyou12 iloveyou123 letmein123 welcome123 welcome1234 administrator admin12345 admin123456
    changeme123 football123 baseball123 monkey12345 princess123 sunshine123 dragon12345 superman123
    starwars123 trustno1234 michael123 jennifer123 computer123 internet123 whatever123 chainchat123
    chainchat1234 secretpassword mypassword mypassword1 mypassword123 verysecure123 letmeinplease
    """.split()
)


def check_password_policy(password: str, *, email: str = "", display_name: str = "") -> None:
    """Reject short, common, or account-derived passwords with 422 ``weak_password``."""
    lowered = password.lower()
    local_part = email.split("@", 1)[0].lower()
    if len(password) < MIN_LENGTH:
        raise ValidationFailed(
            f"password must have at least {MIN_LENGTH} characters", code=AuthErrorCode.WEAK_PASSWORD
        )
    if lowered in COMMON_PASSWORDS or len(set(password)) < 4:
        raise ValidationFailed(
            "this password is too common; choose another", code=AuthErrorCode.WEAK_PASSWORD
        )
    if lowered in {email.lower(), local_part, display_name.lower()}:
        raise ValidationFailed(
            "the password must not be your e-mail or name", code=AuthErrorCode.WEAK_PASSWORD
        )


class Passwords:
    """argon2id hashing with a dummy hash so unknown accounts cost the same as wrong passwords."""

    def __init__(self, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(24))

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password`` (PHC string)."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; with no hash, burn the same time and return False."""
        target = stored_hash or self._dummy_hash
        try:
            ok = await asyncio.to_thread(self._hasher.verify, target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        return bool(ok) and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters than today's."""
        return self._hasher.check_needs_rehash(stored_hash)
