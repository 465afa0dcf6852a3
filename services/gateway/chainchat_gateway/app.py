"""The gateway: the public HTTP + WebSocket API, the web client's files, JWT checks, rate limits."""

from __future__ import annotations

from types import ModuleType

from fastapi import APIRouter, FastAPI

from chainchat_gateway import openapi, security
from chainchat_gateway.bodies import BodyLimitMiddleware
from chainchat_gateway.routes import auth, chat, directory, files, ledger, system, web
from chainchat_gateway.settings import GatewaySettings
from chainchat_service.runtime import ServiceRuntime
from chainchat_service.web import create_service_app

API_PREFIX = "/api/v1"
# Each domain module has `router` and may have `async def setup(app, runtime)` (subscriptions,
# caches) and `async def teardown(app, runtime)`; the web client's module mounts last at "/".
ROUTE_MODULES: tuple[ModuleType, ...] = (system, auth, directory, chat, files, ledger)


async def _setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    await security.setup(app, runtime)
    for module in (*ROUTE_MODULES, web):
        hook = getattr(module, "setup", None)
        if hook is not None:
            await hook(app, runtime)


async def _teardown(app: FastAPI, runtime: ServiceRuntime) -> None:
    for module in reversed(ROUTE_MODULES):
        hook = getattr(module, "teardown", None)
        if hook is not None:
            await hook(app, runtime)


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    app = create_service_app(
        settings,
        title="ChainChat API",
        setup=_setup,
        teardown=_teardown,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # routes/web.py serves Swagger UI from the web build (no CDN script)
        redoc_url=None,
    )
    api = APIRouter(prefix=API_PREFIX)
    for module in ROUTE_MODULES:
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(web.router)  # after the API: the web client at "/" with its SPA fallback
    openapi.install(app, API_PREFIX)
    app.add_middleware(BodyLimitMiddleware)
    return app
