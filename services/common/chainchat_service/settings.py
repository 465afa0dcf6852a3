"""Settings every service shares; each service subclasses with its own fields."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# the development defaults shipped in compose.yaml are placeholders too: production refuses them
PLACEHOLDER_SECRETS = {
    "", "changeme", "change-me", "secret", "dev", "development", "chainchat-dev-internal-secret",
}  # fmt: skip


def default_var_dir() -> Path:
    return Path(os.environ.get("CHAINCHAT_VAR", Path(__file__).resolve().parents[3] / "var"))


class ServiceSettings(BaseSettings):
    # CHAINCHAT_ENV_FILE lets the test harness keep a developer's .env out of its services.
    model_config = SettingsConfigDict(
        env_file=os.environ.get("CHAINCHAT_ENV_FILE", ".env"), extra="ignore", env_file_encoding="utf-8"
    )

    environment: Literal["development", "production", "test"] = "development"
    # one server, or a cluster's servers comma-separated (the client fails over between them)
    nats_url: str = "nats://127.0.0.1:4223"
    # copies of every JetStream stream and KV bucket the services create: 1 on a single server,
    # 3 on a 3-node cluster (an existing stream with fewer is scaled up at start)
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    # this service's bus user (SPEC §11): the password itself, or better a file holding it (a
    # Compose secret, or var/nats-auth/<user>.password from devstack); required in production
    nats_user: str = ""
    nats_password: str = ""
    nats_password_file: Path | None = None
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 0
    database_url: str = ""
    instance_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}")
    public_url: str = "http://127.0.0.1:8000"

    service_name: str = "service"
    # names of settings that are secrets: must be set (and not a placeholder) in production
    secret_fields: tuple[str, ...] = ()

    def nats_secret(self) -> str:
        """The bus password: ``NATS_PASSWORD``, else the first line of ``NATS_PASSWORD_FILE``."""
        if self.nats_password:
            return self.nats_password
        if self.nats_password_file is not None:
            return self.nats_password_file.read_text().strip()
        return ""

    @model_validator(mode="after")
    def _reject_placeholder_secrets(self) -> ServiceSettings:
        if self.environment != "production":
            return self
        for name in self.secret_fields:
            value = getattr(self, name)
            if value is None or str(value).strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    f"{name.upper()} must be set to a real secret in production "
                    f"(ENVIRONMENT=production); refusing to start"
                )
        bus_password = self.nats_password.strip().lower()
        if bus_password in PLACEHOLDER_SECRETS - {""} or bus_password.startswith("chainchat-dev"):
            raise ValueError(
                "NATS_PASSWORD must be set to a real secret in production (ENVIRONMENT=production); "
                "refusing to start"
            )
        if not self.nats_user or (not self.nats_password and self.nats_password_file is None):
            raise ValueError(
                "NATS_USER and NATS_PASSWORD (or NATS_PASSWORD_FILE) must be set in production "
                "(ENVIRONMENT=production): the bus refuses connections without credentials"
            )
        return self

    def sqlalchemy_url(self) -> str:
        """The async SQLAlchemy URL: SQLite file under var/ unless DATABASE_URL says otherwise."""
        url = self.database_url or f"sqlite:///{default_var_dir() / f'{self.service_name}.db'}"
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            return url.replace("sqlite:///", "sqlite+aiosqlite:///", 1)
        for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url.removeprefix(prefix)
        return url
