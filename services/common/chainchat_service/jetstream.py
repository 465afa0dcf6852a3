"""The parts of the one JetStream pull-consumer loop (``Bus.consume`` / ``Bus.consume_batches``).

A fetched message is decoded (``Received``: the event, or why it is none), the handler decides one
outcome per message (``Ack``, ``Nak(delay)``, ``Term(reason)``) and ``_PullConsumer`` settles them
in ONE place. It owns the pull subscription: created on first use (after ``prepare``), dropped after
a failure or while the consumer is not ``active`` (e.g. another instance holds the lease).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from chainchat_service.logging import get_logger

if TYPE_CHECKING:
    from chainchat_service.bus import Bus

E = TypeVar("E")

log = get_logger(__name__)

STREAM_MESSAGES = Counter(
    "chainchat_stream_messages_total", "JetStream messages settled", ["durable", "outcome"]
)


def first_error(exc: ValidationError) -> str:
    """Where and what, without the input (it may hold anything)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "body"
    return f"invalid {where}: {first.get('msg', 'invalid value')}"[:200]


class InvalidEvent(Exception):
    """Raised by a stream decoder: the message is not an event this consumer takes."""


Decode = Callable[[Msg], E]


@dataclass(frozen=True, slots=True)
class Received(Generic[E]):
    """One fetched stream message: its decoded ``event``, or ``None`` and why (``invalid``)."""

    msg: Msg
    event: E | None
    invalid: str | None = None

    @property
    def subject(self) -> str:
        return self.msg.subject

    @property
    def stream_seq(self) -> int | None:
        try:
            return int(self.msg.metadata.sequence.stream)
        except Exception:  # noqa: BLE001 - metadata is only for log lines
            return None


@dataclass(frozen=True, slots=True)
class Ack:
    """Done: never deliver it again."""


@dataclass(frozen=True, slots=True)
class Nak:
    """Not done now: deliver it again after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True, slots=True)
class Term:
    """Never done: drop it for good (the reason is for the log)."""

    reason: str


Settle = Ack | Nak | Term
ACK = Ack()


def one_at_a_time(
    handler: Callable[[E], Awaitable[None]], durable: str, nak_delay: float
) -> Callable[[list[Received[E]]], Awaitable[list[Settle]]]:
    """A batch handler that hands ``handler`` one event after the other, in stream order: ``Ack``
    when it returned, ``Nak(nak_delay)`` when it raised, ``Term`` when the message did not decode."""

    async def each(received: list[Received[E]]) -> list[Settle]:
        outcomes: list[Settle] = []
        for item in received:
            if item.event is None:  # will never parse: drop it, loudly, not redeliver it for ever
                log.warning("stream_event_invalid", durable=durable, subject=item.subject,
                            reason=item.invalid, stream_seq=item.stream_seq)  # fmt: skip
                outcomes.append(Term(item.invalid or "invalid"))
                continue
            try:
                await handler(item.event)
                outcomes.append(ACK)
            except Exception as exc:  # noqa: BLE001 - database busy, ...: redeliver it later
                log.warning("stream_event_failed", durable=durable, subject=item.subject,
                            error=str(exc)[:200] or type(exc).__name__)  # fmt: skip
                outcomes.append(Nak(nak_delay))
        return outcomes

    return each


def decoder(event: type[Any] | Decode[Any]) -> Decode[Any]:
    if isinstance(event, type) and issubclass(event, BaseModel):
        model = event
        return lambda msg: model.model_validate_json(msg.data)
    return event


def _decode(decode: Decode[E], msg: Msg) -> Received[E]:
    try:
        return Received(msg, decode(msg))
    except InvalidEvent as exc:
        return Received(msg, None, str(exc)[:200])
    except ValidationError as exc:
        return Received(msg, None, first_error(exc))


class PullConsumer(Generic[E]):
    """The state of one ``consume_batches`` loop: its subscription and whether it is active."""

    def __init__(
        self,
        bus: Bus,
        stream: str,
        durable: str,
        decode: Decode[E],
        handler: Callable[[list[Received[E]]], Awaitable[list[Settle]]],
        *,
        subject: str,
        batch: int,
        fetch_timeout: float,
        linger_s: float,
        nak_delay: float,
        active: Callable[[], bool] | None,
        prepare: Callable[[], Awaitable[object]] | None,
        config: ConsumerConfig,
    ) -> None:
        self.bus, self.stream, self.durable, self.subject = bus, stream, durable, subject
        self.decode, self.handler, self.config = decode, handler, config
        self.batch, self.fetch_timeout, self.linger_s = batch, fetch_timeout, linger_s
        self.nak_delay, self.active, self.prepare = nak_delay, active, prepare
        self._sub: JetStreamContext.PullSubscription | None = None
        self._consuming = False

    async def step(self) -> float | None:
        if self.active is not None and not self.active():
            if self._consuming:
                await self.drop()
                log.info("stream_consumer_paused", durable=self.durable)
                self._consuming = False
            return 0.25
        try:
            msgs = await self.fetch(await self.subscription())
            if msgs:
                await self.settle_batch([_decode(self.decode, m) for m in msgs])
        except Exception:
            await self.drop()
            raise
        return None

    async def subscription(self) -> JetStreamContext.PullSubscription:
        if self._sub is None:
            if self.prepare is not None:
                await self.prepare()
            self._sub = await self.bus.js.pull_subscribe(
                self.subject, durable=self.durable, stream=self.stream, config=self.config
            )
            log.info("stream_consumer_started", durable=self.durable, stream=self.stream)
            self._consuming = True
        return self._sub

    async def fetch(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        """Up to ``batch`` messages: wait for the first, then keep collecting for ``linger_s`` (the
        server hands a pull a few dozen at a time; one handler call per few dozen caps the rate)."""
        try:
            msgs = await sub.fetch(self.batch, timeout=self.fetch_timeout)
        except (TimeoutError, NatsTimeoutError):
            return []
        deadline = time.monotonic() + self.linger_s
        while len(msgs) < self.batch:
            left = deadline - time.monotonic()
            if left <= 0.001:
                break
            try:
                msgs += await sub.fetch(self.batch - len(msgs), timeout=left)
            except (TimeoutError, NatsTimeoutError):
                break
        return msgs

    async def settle_batch(self, received: list[Received[E]]) -> None:
        """The ONE place stream messages are acknowledged, asked again or terminated."""
        try:
            outcomes = await self.handler(received)
        except Exception:
            # not done: have them back soon rather than after ack_wait (what never decodes, never)
            outcomes = [Nak(self.nak_delay) if i.event is not None else Term("undecodable") for i in received]
            await self._settle(received, outcomes)
            raise
        await self._settle(received, outcomes)

    async def _settle(self, received: list[Received[E]], outcomes: list[Settle]) -> None:
        for item, outcome in zip(received, outcomes, strict=True):
            if isinstance(outcome, Ack):
                await item.msg.ack()
                STREAM_MESSAGES.labels(self.durable, "ack").inc()
            elif isinstance(outcome, Nak):
                await item.msg.nak(delay=outcome.delay)
                STREAM_MESSAGES.labels(self.durable, "nak").inc()
            else:  # the handler logged why, with what it knows of the message
                log.debug("stream_message_terminated", durable=self.durable, reason=outcome.reason)
                await item.msg.term()
                STREAM_MESSAGES.labels(self.durable, "term").inc()

    async def drop(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
