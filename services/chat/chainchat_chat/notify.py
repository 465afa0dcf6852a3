"""Deliveries to gateways: one core NATS message per member user, the WebSocket frame itself.

Published right after the commit, best effort: live delivery is a latency optimisation, the
history (``after_seq``) is the source of truth a reconnecting client catches up from. Going
through the outbox would add a database round trip and a polling hop to every message, and two
chat instances relaying the same outbox could deliver twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Counter
from pydantic import BaseModel

from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger

log = get_logger(__name__)

DELIVERIES = Counter("chainchat_chat_deliveries_total", "Per-user deliveries published", ["type"])


class Notifier(Protocol):
    async def deliver(self, user_ids: Iterable[str], frame: BaseModel) -> None:
        """Send ``frame`` to every connected device of each user."""
        ...

    async def deliver_encoded(self, user_ids: Iterable[str], frame_type: str, payload: bytes) -> None:
        """``deliver`` for a frame already serialised (the message frame, built from the stored
        envelope's bytes instead of dumping the envelope again)."""
        ...


class NatsNotifier:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def deliver(self, user_ids: Iterable[str], frame: BaseModel) -> None:
        payload = frame.model_dump_json(exclude_none=True).encode()
        await self.deliver_encoded(user_ids, str(getattr(frame, "type", "unknown")), payload)

    async def deliver_encoded(self, user_ids: Iterable[str], frame_type: str, payload: bytes) -> None:
        count = 0
        try:
            nc = self.bus.nc
            for user_id in sorted(set(user_ids)):
                await nc.publish(Subject.DELIVERY_TO_USER.format(user_id=user_id), payload)
                count += 1
        except Exception as exc:  # noqa: BLE001 - the change is committed; clients catch up
            log.warning("delivery_failed", type=frame_type, error=str(exc) or type(exc).__name__)
        DELIVERIES.labels(frame_type).inc(count)
