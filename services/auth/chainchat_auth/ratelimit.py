"""Moving-window rate limits kept in the auth database.

Every gateway forwards logins to auth, and every auth instance shares this database, so one
count per account and per IP holds however many gateways and auth instances run.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import col, func, select

from chainchat_auth.models import RateEvent
from chainchat_protocol.errors import RateLimited
from chainchat_service.db import Database


@dataclass(frozen=True)
class Limit:
    count: int
    window_s: int

    @classmethod
    def parse(cls, text: str, *, factor: int = 1) -> Limit:
        """``"5/900"`` → 5 per 900 seconds (``factor`` multiplies the count)."""
        count, _, window = text.partition("/")
        limit = cls(int(count) * factor, int(window))
        if limit.count < 1 or limit.window_s < 1:
            raise ValueError(f"bad rate limit {text!r}")
        return limit


class RateLimiter:
    """Counts events per key; ``check`` raises 429 ``rate_limited`` with ``Retry-After``."""

    def __init__(self, db: Database, now: Callable[[], float] = time.time) -> None:
        self.db = db
        self._now = now

    async def check(self, key: str, limit: Limit) -> int:
        """Raise :class:`RateLimited` if ``key`` already has ``limit.count`` events in the window;
        else return how many it has."""
        now = self._now()
        async with self.db.session() as session:
            stmt = select(func.count(), func.min(RateEvent.at)).where(
                RateEvent.key == key, col(RateEvent.at) > now - limit.window_s
            )
            count, oldest = (await session.exec(stmt)).one()
        if count >= limit.count:
            retry_after = max(1, math.ceil((oldest or now) + limit.window_s - now))
            raise RateLimited("too many attempts; try again later", retry_after=retry_after)
        return int(count)

    async def hit(self, *keys: str) -> None:
        """Count one event for each key."""
        now = self._now()
        async with self.db.session() as session:
            for key in keys:
                session.add(RateEvent(key=key, at=now))
            await session.commit()

    async def consume(self, key: str, limit: Limit) -> None:
        """Check then count: for actions limited whether or not they succeed (sign-up, reset)."""
        await self.check(key, limit)
        await self.hit(key)

    async def clear(self, key: str) -> None:
        """Forget a key's events (a successful login clears the account's failures)."""
        async with self.db.session() as session:
            await session.exec(delete(RateEvent).where(col(RateEvent.key) == key))
            await session.commit()

    async def purge(self, max_window_s: int) -> int:
        """Drop events older than any window; returns how many."""
        async with self.db.session() as session:
            result = await session.exec(
                delete(RateEvent).where(col(RateEvent.at) < self._now() - max_window_s)
            )
            await session.commit()
            return int(result.rowcount or 0)
