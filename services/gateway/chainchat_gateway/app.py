"""The gateway: the public HTTP + WebSocket API, the web client's files, JWT checks, rate limits."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from chainchat_gateway.routes import auth, chat, files, ledger, system
from chainchat_gateway.settings import GatewaySettings
from chainchat_service.web import create_service_app

API_PREFIX = "/api/v1"


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    app = create_service_app(
        settings,
        title="ChainChat API",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    api = APIRouter(prefix=API_PREFIX)
    for module in (system, auth, chat, files, ledger):
        api.include_router(module.router)
    app.include_router(api)
    return app
