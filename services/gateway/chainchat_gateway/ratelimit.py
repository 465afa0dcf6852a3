"""Who is asking (client IP behind trusted proxies) and in-process limits for the gateway itself.

The limits that must hold across gateways (failed logins per account and per IP, sign-ups and
reset requests per IP and per e-mail) are counted by the auth service in its database, which every
gateway reaches; the gateway passes the client IP along. What stays here is local by nature, such
as how often this gateway may re-fetch the JWKS when it meets an unknown key id.
"""

from __future__ import annotations

import ipaddress
import math
import time

from fastapi import Request
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


def client_ip(request: Request, trusted_proxies: int = 0) -> str:
    """The caller's IP: the peer address, or with ``trusted_proxies`` = N the address N hops
    from the right of ``X-Forwarded-For`` (entries further left can be forged by the client)."""
    peer = request.client.host if request.client else "unknown"
    if trusted_proxies <= 0:
        return peer
    forwarded = [
        part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()
    ]
    chain = [*forwarded, peer]
    candidate = chain[max(len(chain) - 1 - trusted_proxies, 0)]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


class LocalLimiter:
    """A moving-window limit per key inside one process (``limits`` memory storage)."""

    def __init__(self, count: int, per_seconds: int) -> None:
        self._item = RateLimitItemPerSecond(count, per_seconds)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def allow(self, key: str) -> bool:
        """Count one event for ``key``; False when the limit is already reached."""
        return bool(self._limiter.hit(self._item, key))

    def retry_after(self, key: str) -> int:
        """Seconds until ``key`` may act again (at least 1)."""
        stats = self._limiter.get_window_stats(self._item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
