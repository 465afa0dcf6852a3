"""The web client's files (``web/dist``, built by ``npm run build`` in ``web/``), served at ``/``.

* ``/assets/*``: content-hashed bundles, cached for a year (``immutable``);
* other files at the top of ``dist`` (icons, robots.txt) as they are;
* every other GET outside ``/api`` is a client route of the single-page app (``/login``,
  ``/verify``, ``/c/<id>``, ``/admin`` …) and gets ``index.html``, never cached, so a new build
  is picked up at once.

Mounted last, so API, health and metrics routes win. ``/verify`` (the e-mail link) is declared
before the catch-all: the app for a browser when it is built, else the server-rendered page.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from nats.errors import Error as NatsError

from chainchat_gateway.settings import GatewaySettings
from chainchat_gateway.verify_page import verify_page
from chainchat_protocol.errors import ChainChatError, ErrorCode, NotFound
from chainchat_protocol.ledger import LEDGER_INFO
from chainchat_protocol.rpc import Empty
from chainchat_service.runtime import ServiceRuntime

router = APIRouter(include_in_schema=False)

_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_INDEX_HEADERS = {
    "Cache-Control": "no-cache",
    # links such as /verify?token=… and /reset-password?token=… carry secrets
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
# No inline script, no foreign origin: the page talks to this gateway (its API and WebSocket;
# CSP3 'self' covers ws/wss to the same host) and to nothing else, except the ledger's public
# chain RPC URL, which the proof dialog asks directly so that a user trusts only the chain.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'{rpc}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
    "object-src 'none'"
)
_RPC_CACHE_S = 60.0
_NOT_BUILT = (
    "<!doctype html><html><head><meta charset='utf-8'><title>ChainChat</title></head>"
    "<body style='font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto'>"
    "<h1>ChainChat</h1><p>The web client is not built. Run <code>cd web &amp;&amp; npm ci &amp;&amp; "
    "npm run build</code> (or <code>make web</code>) and reload.</p></body></html>"
)


def _dist(request: Request) -> Path:
    settings: GatewaySettings = request.app.state.settings
    return Path(settings.web_dist_dir)


def _inside(base: Path, relative: str) -> Path | None:
    """``base / relative`` if it is an existing file inside ``base`` (no ``..`` escapes)."""
    try:
        root = base.resolve(strict=True)
        target = (root / relative).resolve(strict=True)
    except (FileNotFoundError, OSError, RuntimeError):
        return None
    if not target.is_file() or not target.is_relative_to(root):
        return None
    return target


def _origin(url: str | None) -> str | None:
    """``scheme://host[:port]`` of an http(s) URL, or None (a CSP source must not be free text)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or not all(c.isalnum() or c in ".-:" for c in host):
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


async def _rpc_origin(request: Request) -> str | None:
    """The ledger's public RPC origin, asked over NATS at most once a minute (None while down)."""
    state = request.app.state
    cached: tuple[float, str | None] | None = getattr(state, "web_rpc_origin", None)
    if cached and time.monotonic() - cached[0] < _RPC_CACHE_S:
        return cached[1]
    settings: GatewaySettings = state.settings
    runtime: ServiceRuntime = state.runtime
    try:
        info = await runtime.bus.request(LEDGER_INFO, Empty(), timeout=min(settings.rpc_timeout_s, 2.0))
    except (ChainChatError, NatsError, OSError, TimeoutError):
        return cached[1] if cached else None
    origin = _origin(info.rpc_url_public)
    state.web_rpc_origin = (time.monotonic(), origin)
    return origin


async def _index(request: Request) -> Response:
    index = _dist(request) / "index.html"
    if not index.is_file():
        return HTMLResponse(_NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
    rpc = await _rpc_origin(request)
    csp = _CSP.format(rpc=f" {rpc}" if rpc else "")
    return FileResponse(
        index, media_type="text/html", headers={**_INDEX_HEADERS, "Content-Security-Policy": csp}
    )


@router.api_route("/assets/{path:path}", methods=["GET", "HEAD"])
async def asset(path: str, request: Request) -> Response:
    target = _inside(_dist(request) / "assets", path)
    if target is None:
        raise NotFound("no such asset", code=ErrorCode.NOT_FOUND)
    return FileResponse(target, headers=_IMMUTABLE)


# The API's own documentation page: Swagger UI from this build (dist/docs), nothing from elsewhere.
_DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_DOCS_PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>ChainChat API</title>"
    "<link rel='stylesheet' href='/api/v1/docs/swagger-ui.css'></head><body><div id='swagger-ui'></div>"
    "<script src='/api/v1/docs/swagger-ui-bundle.js'></script><script src='/api/v1/docs/init.js'></script>"
    "</body></html>"
)


@router.api_route("/api/v1/docs", methods=["GET", "HEAD"])
async def api_docs(request: Request) -> Response:
    """Swagger UI for ``/api/v1/openapi.json``, served from the web build under a strict CSP."""
    if not (_dist(request) / "docs" / "init.js").is_file():
        return HTMLResponse(_NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
    headers = {**_INDEX_HEADERS, "Content-Security-Policy": _DOCS_CSP}
    return HTMLResponse(_DOCS_PAGE, headers=headers)


@router.api_route("/api/v1/docs/{name}", methods=["GET", "HEAD"])
async def api_docs_asset(name: str, request: Request) -> Response:
    target = _inside(_dist(request) / "docs", name)
    if target is None:
        raise NotFound("no such file", code=ErrorCode.NOT_FOUND)
    return FileResponse(
        target, headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    )


@router.api_route("/", methods=["GET", "HEAD"])
async def index(request: Request) -> Response:
    return await _index(request)


@router.get("/verify")
async def verify(request: Request, token: str = "") -> Response:
    """The link of the verification e-mail. With a built client a browser (``Accept: text/html``)
    gets the app, which verifies the token itself with ``POST /api/v1/auth/verify`` (so a mail
    scanner that merely fetches the link does not burn the token); other clients, and every client
    when there is no build, get the server-rendered page."""
    if "text/html" in request.headers.get("accept", "") and (_dist(request) / "index.html").is_file():
        return await _index(request)
    return await verify_page(request, token)


# Every method, so that an unknown API path is a 404 (not a 405 from this GET-only route).
@router.api_route("/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
async def client_route(path: str, request: Request) -> Response:
    if path == "api" or path.startswith("api/") or request.method not in ("GET", "HEAD"):
        raise NotFound("Not Found", code=ErrorCode.NOT_FOUND)
    if "/" not in path and "." in path:
        target = _inside(_dist(request), path)
        if target is None:
            raise NotFound("Not Found", code=ErrorCode.NOT_FOUND)
        return FileResponse(target, headers={"Cache-Control": "public, max-age=3600"})
    return await _index(request)
