"""What chat needs from auth: which users are active, which device keys each user has now.

``Directory`` is the interface the domain logic uses (unit tests pass a fake); ``NatsDirectory``
asks auth over NATS. Device keys are cached per instance for a few seconds because every send needs
them; a ``KeyChanged`` event evicts the user at once, and a send that fails the recipient check
against cached keys is re-checked with fresh keys before it is rejected, so staleness can only let
a message through that omits a device published in the last ``ttl`` seconds and whose event was
lost.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Protocol

from chainchat_protocol.auth import AUTH_KEYS_DEVICES, AUTH_USERS_GET, DevicesRequest, UsersGetRequest
from chainchat_protocol.errors import Unavailable
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger

log = get_logger(__name__)

DeviceMap = dict[str, frozenset[str]]


class Directory(Protocol):
    async def active_users(self, user_ids: Collection[str]) -> set[str]:
        """The subset of ``user_ids`` that exist and are active."""
        ...

    async def devices(self, user_ids: Collection[str], *, fresh: bool = False) -> DeviceMap:
        """Current device key ids of each user (an empty set for a user without keys)."""
        ...

    def forget(self, user_id: str) -> None:
        """Drop cached keys of ``user_id`` (its keys changed)."""
        ...


class NatsDirectory:
    """``Directory`` over auth's NATS subjects, with a short-lived device-key cache."""

    def __init__(self, bus: Bus, *, ttl_s: float = 10.0, timeout_s: float = 5.0) -> None:
        self.bus = bus
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self._keys: dict[str, tuple[float, frozenset[str]]] = {}

    async def active_users(self, user_ids: Collection[str]) -> set[str]:
        reply = await self.bus.request(
            AUTH_USERS_GET, UsersGetRequest(user_ids=sorted(set(user_ids))), timeout=self.timeout_s
        )
        return {u.id for u in reply.users if u.status == "active"}

    async def devices(self, user_ids: Collection[str], *, fresh: bool = False) -> DeviceMap:
        now = time.monotonic()
        wanted = set(user_ids)
        missing = wanted if fresh else {u for u in wanted if self._keys.get(u, (0.0,))[0] <= now}
        if missing:
            try:
                reply = await self.bus.request(
                    AUTH_KEYS_DEVICES, DevicesRequest(user_ids=sorted(missing)), timeout=self.timeout_s
                )
            except Unavailable:
                # auth briefly down: keys we saw recently are better than refusing every send
                if not all(u in self._keys for u in wanted):
                    raise
                log.warning("device_keys_stale", users=len(missing))
            else:
                expires = now + self.ttl_s
                for user_id in missing:
                    keys = reply.devices.get(user_id, [])
                    self._keys[user_id] = (expires, frozenset(k.key_id for k in keys))
        return {u: self._keys[u][1] for u in wanted}

    def forget(self, user_id: str) -> None:
        self._keys.pop(user_id, None)
