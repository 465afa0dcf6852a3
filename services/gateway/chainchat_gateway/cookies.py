"""The refresh-token cookie of the web client (SPEC §11 "tokens out of reach of scripts").

Every login and refresh also sets the refresh token as an ``HttpOnly; SameSite=Strict`` cookie
scoped to ``/api/v1/auth``: page scripts never see it, other sites never send it, and only the
refresh and logout routes receive it. ``Secure`` unless ``PUBLIC_URL`` is plain HTTP on a loopback
address (browsers keep a ``Secure`` cookie only over HTTPS, except for localhost). The SDK and the
CLI keep using the JSON body; a refresh that came by cookie answers without the token in its body,
so a script that calls it learns nothing it could take elsewhere.
"""

from __future__ import annotations

from ipaddress import ip_address
from urllib.parse import urlsplit

from fastapi import Request, Response

from chainchat_gateway.settings import GatewaySettings

REFRESH_COOKIE = "chainchat_refresh"
COOKIE_PATH = "/api/v1/auth"


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_secure(settings: GatewaySettings) -> bool:
    """``Secure`` for every deployment but plain HTTP on loopback."""
    url = urlsplit(settings.public_url)
    return not (url.scheme == "http" and _loopback(url.hostname or ""))


def set_refresh_cookie(response: Response, token: str, settings: GatewaySettings) -> None:
    response.set_cookie(
        REFRESH_COOKIE,
        token,
        max_age=settings.refresh_cookie_max_age_s,
        path=COOKIE_PATH,
        secure=cookie_secure(settings),
        httponly=True,
        samesite="strict",
    )


def clear_refresh_cookie(response: Response, settings: GatewaySettings) -> None:
    response.delete_cookie(
        REFRESH_COOKIE, path=COOKIE_PATH, secure=cookie_secure(settings), httponly=True, samesite="strict"
    )


def clearing_header(settings: GatewaySettings) -> str:
    """The ``Set-Cookie`` value that drops the cookie (for error answers, built apart)."""
    scratch = Response()
    clear_refresh_cookie(scratch, settings)
    return scratch.headers["set-cookie"]


def refresh_cookie(request: Request) -> str | None:
    """The refresh token the browser sent as a cookie, if any."""
    return request.cookies.get(REFRESH_COOKIE) or None
