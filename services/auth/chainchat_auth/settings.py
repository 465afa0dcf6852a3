"""Settings of the auth service (environment variables, see .env.example)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field

from chainchat_auth.vault import DEV_DATA_KEY, SecretVault
from chainchat_service.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    service_name: str = "auth"
    http_port: int = 8101
    secret_fields: tuple[str, ...] = ("auth_data_key",)

    # seals TOTP secrets and JWT signing keys in the database (see vault.py); rotate by moving the
    # old value to AUTH_DATA_KEY_PREVIOUS
    auth_data_key: str = ""
    auth_data_key_previous: str = ""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0
    mail_from: str = "ChainChat <no-reply@chainchat.local>"

    auth_require_approval: bool = True
    jwt_ttl_s: int = Field(default=900, ge=30, le=86400)
    refresh_ttl_s: int = Field(default=30 * 86400, ge=300)
    verify_token_ttl_s: int = 24 * 3600
    reset_token_ttl_s: int = 3600
    resend_cooldown_s: int = 60
    siwe_nonce_ttl_s: int = 600
    # lifetime of a reauth token (recent authentication, SPEC §11): at most five minutes
    reauth_ttl_s: int = Field(default=300, ge=30, le=300)
    chain_id: int = 1337

    # argon2id cost: ~50 ms per hash on the reference machine (see bench/auth_bench.py)
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 32768
    argon2_parallelism: int = 1

    # rate limits: "<count>/<seconds>"
    rate_login_fail_account: str = "5/900"
    rate_login_fail_ip: str = "20/60"
    rate_register_ip: str = "10/600"
    rate_register_email: str = "3/3600"
    rate_reset_ip: str = "10/600"
    rate_reset_email: str = "3/3600"
    # wrong passwords / codes at POST /auth/reauth, per account: a stolen token buys few guesses
    rate_reauth_fail: str = "5/900"
    # every nonce is a row an unauthenticated caller makes us write
    rate_siwe_nonce_ip: str = "30/60"
    # The test harness drives every user from 127.0.0.1; per-IP sign-up limits would stop the
    # suite, so ENVIRONMENT=test multiplies them (per-account and per-e-mail limits stay exact).
    test_ip_limit_factor: int = 100

    @property
    def siwe_domain(self) -> str:
        """EIP-4361 ``domain``: the authority (host[:port]) of PUBLIC_URL."""
        return urlsplit(self.public_url).netloc

    def vault(self) -> SecretVault:
        return SecretVault(self.auth_data_key or DEV_DATA_KEY, self.auth_data_key_previous)

    @property
    def public_base(self) -> str:
        return self.public_url.rstrip("/")
