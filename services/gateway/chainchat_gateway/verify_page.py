"""``GET /verify?token=…``: the server-rendered page behind the link in the verification mail
(the web client takes it over for browsers when it is built, see routes/web.py)."""

from __future__ import annotations

import html
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from chainchat_gateway.settings import GatewaySettings
from chainchat_protocol import auth as p
from chainchat_protocol.errors import ChainChatError
from chainchat_service.bus import Bus


async def _call(bus: Bus, settings: GatewaySettings, req: p.VerifyBody) -> Any:
    return await bus.request(p.AUTH_VERIFY, req, timeout=settings.rpc_timeout_s)


_PAGE_HEADERS = {
    # the URL carries a secret: never leak it as a referrer, never cache the page
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


def _page(title: str, text: str, settings: GatewaySettings, status: int = 200) -> HTMLResponse:
    home = html.escape(settings.public_url.rstrip("/") + "/", quote=True)
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>ChainChat</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        f"<p><a href='{home}'>Open ChainChat</a></p></body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=_PAGE_HEADERS)


async def verify_page(request: Request, token: str = "") -> HTMLResponse:
    """``GET /verify?token=…``: the link in the verification mail."""
    settings: GatewaySettings = request.app.state.settings
    bus: Bus = request.app.state.runtime.bus
    try:
        body = p.VerifyBody(token=token)
        reply: p.VerifyReply = await _call(bus, settings, body)
    except ValidationError:
        return _page("Link not valid", "This verification link is incomplete or damaged.", settings, 400)
    except ChainChatError as exc:
        if exc.http_status >= 500:
            return _page(
                "Please try again", "The service is busy; open the link again in a minute.", settings, 503
            )
        return _page(
            "Link not valid", "This link was already used or has expired. Request a new one.", settings, 400
        )
    if reply.status == "active":
        return _page("E-mail verified", "Your address is verified. You can sign in now.", settings)
    if reply.status == "pending_approval":
        text = "Your address is verified. An administrator will approve your account; then you can sign in."
        return _page("E-mail verified", text, settings)
    return _page("E-mail verified", f"Your account is {reply.status.replace('_', ' ')}.", settings)
