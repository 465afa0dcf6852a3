"""HTTP pieces every service shares: the SPEC error body, health/readiness/metrics routes, the runner."""

from __future__ import annotations

import gc
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chainchat_protocol.errors import ChainChatError
from chainchat_protocol.rpc import CORRELATION_HEADER
from chainchat_service.db import storage_full, storage_full_error
from chainchat_service.logging import configure_logging, correlation_id, get_logger
from chainchat_service.runtime import ServiceRuntime
from chainchat_service.settings import ServiceSettings

log = get_logger(__name__)

_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 411: "length_required",
    413: "payload_too_large", 415: "unsupported_media_type", 416: "range_not_satisfiable",
    422: "validation_error", 429: "rate_limited", 503: "service_unavailable",
}  # fmt: skip


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _describe_validation(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "the request is not valid"
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body",)]
    where = ".".join(loc) or "body"
    msg = str(first.get("msg", "invalid value"))
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON"
    return f"{where}: {msg}"


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to the SPEC body; a bug is a 500 without a stack trace."""

    @app.exception_handler(ChainChatError)
    async def _chainchat(_: Request, exc: ChainChatError) -> JSONResponse:
        return error_response(exc.http_status, exc.code, exc.message, exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_error", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if storage_full(exc):
            log.error("storage_full", error=str(exc)[:200])
            err = storage_full_error()
            return error_response(err.http_status, err.code, err.message)
        log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
        return error_response(500, "internal_error", "internal error; the request was not completed")


class CorrelationMiddleware:
    """Plain ASGI middleware: a correlation id per request, echoed in the response headers.

    Not ``BaseHTTPMiddleware``: that one turns an exception raised while a body streams into a
    normal end of body, and a download cut short must reach the client as an error.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(CORRELATION_HEADER, "")
        cid = incoming if 8 <= len(incoming) <= 64 and incoming.isalnum() else uuid.uuid4().hex
        token = correlation_id.set(cid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[CORRELATION_HEADER] = cid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id.reset(token)


def install_correlation_middleware(app: FastAPI) -> None:
    app.add_middleware(CorrelationMiddleware)


def health_router(runtime: ServiceRuntime, prefix: str = "") -> APIRouter:
    router = APIRouter(prefix=prefix, tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @router.get("/readyz", summary="The service's own dependencies answer")
    async def readyz() -> JSONResponse:
        health = await runtime.health()
        return JSONResponse(health.model_dump(mode="json"), status_code=200 if health.ready else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def run_http(app: FastAPI, settings: ServiceSettings, **uvicorn_options: Any) -> None:
    """Run a service's HTTP server, with a one-line error when its port is taken.
    ``uvicorn_options``: more ``uvicorn.run`` arguments (the gateway's WebSocket options)."""
    import uvicorn

    configure_logging(settings.service_name, settings.log_level)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((settings.http_host, settings.http_port))
        except OSError:
            where = f"port {settings.http_port} on {settings.http_host}"
            sys.stderr.write(f"{settings.service_name}: {where} is already in use\n")
            raise SystemExit(1) from None
    # what the imports built lives as long as the process: out of every future collection (a full
    # one scanned ~130,000 such objects, a 50–100 ms pause on this machine, straight into the p99
    # of whatever was in flight). Here, not in the lifespan: a test process builds many apps.
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        **uvicorn_options,
    )


Setup = Callable[[FastAPI, ServiceRuntime], Awaitable[None]]


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    setup: Setup | None = None,
    teardown: Callable[[FastAPI, ServiceRuntime], Awaitable[None]] | None = None,
    **fastapi_options: Any,
) -> FastAPI:
    """A service's FastAPI app: lifespan that connects NATS, error handlers, health routes.

    ``setup`` runs before NATS connects (open the database, register handlers via
    ``runtime.on_connected``); ``teardown`` runs after NATS is drained.
    """

    runtime = ServiceRuntime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level)
        if setup is not None:
            await setup(app, runtime)
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()
            if teardown is not None:
                await teardown(app, runtime)

    app = FastAPI(title=title, version="1", lifespan=lifespan, **fastapi_options)
    app.state.runtime = runtime
    app.state.settings = settings
    install_error_handlers(app)
    install_correlation_middleware(app)
    app.include_router(health_router(runtime))
    return app
