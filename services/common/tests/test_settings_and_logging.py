"""Settings refuse placeholder secrets in production; logs never carry secrets."""

from __future__ import annotations

import json

import pytest
import structlog
from pydantic import ValidationError

from chainchat_service.logging import _redact
from chainchat_service.settings import ServiceSettings


class SecretSettings(ServiceSettings):
    signing_secret: str = ""
    secret_fields: tuple[str, ...] = ("signing_secret",)


def test_production_refuses_missing_or_placeholder_secret() -> None:
    for value in ("", "changeme", "secret"):
        with pytest.raises(ValidationError, match="SIGNING_SECRET must be set"):
            SecretSettings(environment="production", signing_secret=value)
    assert SecretSettings(environment="production", signing_secret="a-real-long-value").signing_secret


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
