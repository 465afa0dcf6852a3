"""JWT signing keys (Ed25519, stored in the auth database) and access-token minting.

The newest un-retired key signs. A rotated key stays in the JWKS until every token it signed has
expired, so gateways keep verifying tokens issued just before a rotation.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlmodel import col, or_, select

from chainchat_auth.models import SigningKey, User
from chainchat_auth.vault import SecretVault, signing_key_context, totp_context
from chainchat_protocol.auth import AUDIENCE, ISSUER, REAUTH_AUDIENCE, Jwk, JwksReply
from chainchat_protocol.b64 import b64d, b64e
from chainchat_service.db import Database, utcnow

# instances re-read the current key this often, so a rotation by one reaches all
_CACHE_S = 30.0


def generate_signing_key(vault: SecretVault) -> SigningKey:
    """A new Ed25519 key, its private half sealed; ``kid`` is derived from the public key (RFC 7638
    style, shortened)."""
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    raw_public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = b64e(hashlib.sha256(raw_public).digest()[:16])
    sealed = vault.seal(b64e(raw_private), context=signing_key_context(kid))
    return SigningKey(kid=kid, private_key=sealed, public_key=b64e(raw_public))


async def reseal_all(db: Database, vault: SecretVault) -> int:
    """Seal every stored secret under the current data key: values written before sealing existed,
    and values sealed under ``AUTH_DATA_KEY_PREVIOUS`` after a rotation. Returns how many moved."""
    moved = 0
    async with db.session() as session:
        for key in (await session.exec(select(SigningKey))).all():
            if (fresh := vault.upgrade(key.private_key, context=signing_key_context(key.kid))) is not None:
                key.private_key = fresh
                session.add(key)
                moved += 1
        stmt = select(User).where(
            or_(col(User.totp_secret).is_not(None), col(User.totp_pending_secret).is_not(None))
        )
        for user in (await session.exec(stmt)).all():
            for column in ("totp_secret", "totp_pending_secret"):
                value = getattr(user, column)
                if value is not None:
                    fresh = vault.upgrade(value, context=totp_context(user.id, column))
                    if fresh is not None:
                        setattr(user, column, fresh)
                        session.add(user)
                        moved += 1
        await session.commit()
    return moved


class Signer:
    """Mints access tokens with the current key; lists the verification keys (JWKS)."""

    def __init__(self, db: Database, ttl_s: int, vault: SecretVault) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.vault = vault
        self._current: SigningKey | None = None
        self._private: Ed25519PrivateKey | None = None
        self._loaded_at = 0.0

    async def ensure_key(self) -> SigningKey:
        """Load the current key, creating the first one on the very first start."""
        key = await self._load_current()
        if key is None:
            async with self.db.session() as session:
                session.add(generate_signing_key(self.vault))
                await session.commit()
            key = await self._load_current()
        assert key is not None
        return key

    async def _load_current(self) -> SigningKey | None:
        async with self.db.session() as session:
            stmt = (
                select(SigningKey)
                .where(col(SigningKey.retired_at).is_(None))
                .order_by(col(SigningKey.created_at).desc())
            )
            key = (await session.exec(stmt)).first()
        if key is not None:
            self._current = key
            raw = self.vault.open(key.private_key, context=signing_key_context(key.kid))
            self._private = Ed25519PrivateKey.from_private_bytes(b64d(raw))
            self._loaded_at = time.monotonic()
        return key

    async def current(self) -> tuple[SigningKey, Ed25519PrivateKey]:
        if self._current is None or time.monotonic() - self._loaded_at > _CACHE_S:
            await self.ensure_key()
        assert self._current is not None
        assert self._private is not None
        return self._current, self._private

    async def rotate(self) -> SigningKey:
        """Retire every current key and start signing with a new one."""
        async with self.db.session() as session:
            now = utcnow()
            for old in (
                await session.exec(select(SigningKey).where(col(SigningKey.retired_at).is_(None)))
            ).all():
                old.retired_at = now
                session.add(old)
            fresh = generate_signing_key(self.vault)
            session.add(fresh)
            await session.commit()
        self._current = None
        return await self.ensure_key()

    async def jwks(self) -> JwksReply:
        """Current keys plus keys retired less than one token lifetime (and a margin) ago."""
        horizon = utcnow() - timedelta(seconds=self.ttl_s + 120)
        async with self.db.session() as session:
            stmt = (
                select(SigningKey)
                .where(or_(col(SigningKey.retired_at).is_(None), col(SigningKey.retired_at) > horizon))
                .order_by(col(SigningKey.created_at).desc())
            )
            keys = (await session.exec(stmt)).all()
        return JwksReply(keys=[Jwk(kid=k.kid, x=k.public_key) for k in keys])

    async def mint(self, user: User, session_id: str) -> str:
        """A signed access token for ``user`` in session ``session_id``."""
        key, private = await self.current()
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user.id,
            "role": user.role,
            "sid": session_id,
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key.kid, "typ": "JWT"})

    async def mint_reauth(self, user: User, session_id: str, ttl_s: int) -> str:
        """A reauth token: proof that the caller of session ``session_id`` gave its credentials
        again just now. Its audience is not the access tokens', so it never works as one."""
        key, private = await self.current()
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": REAUTH_AUDIENCE,
            "sub": user.id,
            "sid": session_id,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key.kid, "typ": "reauth+jwt"})
