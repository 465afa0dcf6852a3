"""Settings refuse placeholder secrets in production; logs never carry secrets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import structlog
from pydantic import ValidationError

from chainchat_service.logging import _redact
from chainchat_service.settings import ServiceSettings


class SecretSettings(ServiceSettings):
    signing_secret: str = ""
    secret_fields: tuple[str, ...] = ("signing_secret",)


BUS = {"nats_user": "chat", "nats_password": "a-long-random-bus-password"}


def test_production_refuses_missing_or_placeholder_secret() -> None:
    for value in ("", "changeme", "secret"):
        with pytest.raises(ValidationError, match="SIGNING_SECRET must be set"):
            SecretSettings(environment="production", signing_secret=value, **BUS)
    assert SecretSettings(environment="production", signing_secret="a-real-long-value", **BUS).signing_secret


def test_production_needs_bus_credentials(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="NATS_USER and NATS_PASSWORD"):
        SecretSettings(environment="production", signing_secret="a-real-long-value")
    secret_file = tmp_path / "chat.password"
    secret_file.write_text("from-a-file\n")
    settings = SecretSettings(
        environment="production", signing_secret="a-real-long-value", nats_user="chat",
        nats_password_file=secret_file,
    )  # fmt: skip
    assert settings.nats_secret() == "from-a-file"
    assert SecretSettings(**BUS).nats_secret() == "a-long-random-bus-password"


def test_bus_urls_in_logs_carry_no_password() -> None:
    from chainchat_service.bus import Bus, redact_url

    assert redact_url("nats://chat:s3cret@127.0.0.1:4222") == "nats://chat:***@127.0.0.1:4222"
    assert redact_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"
    bus = Bus("nats://a:pw1@h1:1, nats://b:pw2@h2:2", "x")
    assert "pw1" not in bus.url
    assert "pw2" not in bus.url


def test_development_accepts_defaults() -> None:
    assert SecretSettings(environment="development").signing_secret == ""


def test_sqlite_default_and_postgres_url_mapping(tmp_path: object) -> None:
    settings = ServiceSettings(service_name="chat", database_url="postgresql://u@h:5432/db")
    assert settings.sqlalchemy_url() == "postgresql+asyncpg://u@h:5432/db"
    sqlite = ServiceSettings(service_name="chat", database_url="sqlite:////tmp/x/chat.db")
    assert sqlite.sqlalchemy_url() == "sqlite+aiosqlite:////tmp/x/chat.db"


def test_secrets_are_redacted_by_key_name() -> None:
    event = {
        "event": "login",
        "password": "hunter2hunter2",
        "refresh_token": "abc",
        "totp_code": "123456",
        "user_id": "u1",
        "key_id": "k1",
    }
    out = _redact(None, "info", dict(event))
    rendered = json.dumps(out)
    assert "hunter2" not in rendered
    assert "abc" not in rendered
    assert "123456" not in rendered
    assert out["user_id"] == "u1"
    assert out["key_id"] == "k1"
    assert structlog  # configured in services; here only the processor is under test
