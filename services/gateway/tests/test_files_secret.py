"""The gateway refuses to start in production without a real FILES_INTERNAL_SECRET, as files does."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fastapi import FastAPI

from chainchat_gateway.routes import files
from chainchat_gateway.settings import GatewaySettings
from chainchat_service.settings import PLACEHOLDER_SECRETS


def _app(secret: str) -> FastAPI:
    app = FastAPI()
    app.state.settings = GatewaySettings(
        _env_file=None, files_http_url="http://127.0.0.1:1", files_internal_secret=secret
    )  # type: ignore[call-arg]
    return app


@pytest.mark.parametrize("secret", sorted(PLACEHOLDER_SECRETS))
async def test_production_refuses_placeholder_secrets(secret: str) -> None:
    runtime = SimpleNamespace(settings=SimpleNamespace(environment="production"))
    with pytest.raises(RuntimeError, match="FILES_INTERNAL_SECRET must be set to a real secret"):
        await files.setup(_app(secret), runtime)  # type: ignore[arg-type]


async def test_production_starts_with_a_real_secret_and_development_without_one() -> None:
    for environment, secret in (("production", "x" * 43), ("development", "")):
        app = _app(secret)
        await files.setup(app, SimpleNamespace(settings=SimpleNamespace(environment=environment)))  # type: ignore[arg-type]
        assert app.state.files_proxy is not None
        await files.teardown(app, None)  # type: ignore[arg-type]
