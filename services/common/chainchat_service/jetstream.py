"""The parts of the one JetStream pull-consumer loop (``Bus.consume`` / ``Bus.consume_batches``).

A fetched message is decoded (``Received``: the event, or why it is none), the handler decides one
outcome per message (``Ack``, ``Nak(delay)``, ``Term(reason)``) and ``_PullConsumer`` settles them
in ONE place. It owns the pull subscription: created on first use (after ``prepare``), dropped after
a failure or while the consumer is not ``active`` (e.g. another instance holds the lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError
from nats.js.kv import KeyValue
from prometheus_client import Counter
from pydantic import BaseModel, ValidationError

from chainchat_service.logging import get_logger
from chainchat_service.loops import Backoff, OnError, supervise

if TYPE_CHECKING:
    from chainchat_service.bus import Bus

E = TypeVar("E")
Ev = TypeVar("Ev", bound=BaseModel)

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

    async def step(self) -> float | None:
        if self.active is not None and not self.active():
            if self._sub is not None:
                await self.drop()
                log.info("stream_consumer_paused", durable=self.durable)
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


class JetStreamOps:
    """The bus's JetStream half (``Bus`` inherits it): streams and KV buckets created with the
    deployment's replica count, and the durable pull consumers every service shares."""

    stream_replicas: int
    js: JetStreamContext
    _admin: JetStreamContext

    async def ensure_stream(self, config: StreamConfig) -> StreamInfo:
        """Create a JetStream stream with this deployment's replica count (every service that
        publishes may be the first to start). An existing stream keeps its config, except that one
        with fewer replicas is scaled up: after a move to a cluster no copy stays a single point of loss."""
        assert config.name is not None
        try:
            return await self._admin.add_stream(config.evolve(num_replicas=self.stream_replicas))
        except BadRequestError as exc:
            refused = exc
        try:
            info = await self._scale_up(config.name)
        except NotFoundError:
            # no such stream: the server refused the config itself (e.g. more replicas than nodes)
            log.error(
                "stream_refused", stream=config.name, replicas=self.stream_replicas, detail=str(refused)
            )
            raise refused from None
        # exists with another config: keep it (another version of the service may own it)
        log.info("stream_exists", stream=config.name, detail=str(refused))
        return info

    async def ensure_key_value(self, config: KeyValueConfig) -> KeyValue:
        """Create (or open) a KV bucket with this deployment's replica count, as ``ensure_stream``.
        The bucket returned works with the normal timeouts (its puts and gets are not admin work)."""
        try:
            await self._admin.create_key_value(config.evolve(replicas=self.stream_replicas))
            return await self.js.key_value(config.bucket)
        except BadRequestError as exc:
            refused = exc
        try:
            await self._scale_up(f"KV_{config.bucket}")
        except NotFoundError:
            log.error(
                "key_value_refused", bucket=config.bucket, replicas=self.stream_replicas, detail=str(refused)
            )
            raise refused from None
        log.info("key_value_exists", bucket=config.bucket, detail=str(refused))
        return await self.js.key_value(config.bucket)

    async def _scale_up(self, stream: str) -> StreamInfo:
        info = await self._admin.stream_info(stream)
        have = info.config.num_replicas or 1
        if have >= self.stream_replicas:
            return info
        info = await self._admin.update_stream(info.config.evolve(num_replicas=self.stream_replicas))
        log.warning("stream_scaled_up", stream=stream, replicas_before=have, replicas=self.stream_replicas)
        return info

    async def consume(
        self,
        stream: str,
        durable: str,
        event: type[Ev] | Decode[Ev],
        handler: Callable[[Ev], Awaitable[None]],
        *,
        subject: str,
        batch: int = 32,
        nak_delay: float = 2.0,
        **options: Any,
    ) -> None:
        """Run a durable JetStream pull consumer for ever, one event at a time, in stream order.

        An event is acknowledged after ``handler`` returned; one whose handler raised is asked
        again after ``nak_delay`` seconds (``nak``); one that does not decode is terminated (never
        redelivered). ``options`` are those of ``consume_batches``.
        """

        each = one_at_a_time(handler, durable, nak_delay)
        await self.consume_batches(
            stream, durable, event, each, subject=subject, batch=batch, nak_delay=nak_delay, **options
        )

    async def consume_batches(
        self,
        stream: str,
        durable: str,
        event: type[Ev] | Decode[Ev],
        handler: Callable[[list[Received[Ev]]], Awaitable[list[Settle]]],
        *,
        subject: str,
        batch: int = 32,
        fetch_timeout: float = 5.0,
        linger_s: float = 0.0,
        ack_wait: float = 30.0,
        max_ack_pending: int | None = None,
        max_deliver: int | None = None,
        nak_delay: float = 2.0,
        active: Callable[[], bool] | None = None,
        backoff: Backoff = Backoff(0.5, 10.0),
        on_error: OnError | None = None,
        prepare: Callable[[], Awaitable[object]] | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        """The pull-consumer loop every service shares: fetch up to ``batch`` messages (the first
        waited for up to ``fetch_timeout`` s, then more for at most ``linger_s``), decode them, let
        ``handler`` decide one ``Ack``/``Nak``/``Term`` per message, and settle them here.

        ``event`` is a model (payload validated into it) or a decoder that raises ``InvalidEvent``
        or ``ValidationError``; undecodable messages reach the handler with ``event=None`` and the
        reason. A handler that raises gets every message of the batch ``nak``ed (``nak_delay``) and
        the loop re-subscribes after a back-off. While ``active()`` is false (e.g. another instance
        holds the lease) nothing is fetched and the subscription is dropped, so messages delivered
        but not fetched return after ``ack_wait``. ``prepare`` runs before every (re)subscription
        (e.g. create the stream when this service may be the first to use it).
        """
        consumer = PullConsumer(
            cast("Bus", self), stream, durable, decoder(event), handler, subject=subject, batch=batch,
            fetch_timeout=fetch_timeout, linger_s=linger_s, nak_delay=nak_delay, active=active,
            prepare=prepare, config=ConsumerConfig(
                durable_name=durable, ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                ack_wait=ack_wait, max_ack_pending=max_ack_pending, max_deliver=max_deliver,
                filter_subject=subject,
            ),
        )  # fmt: skip
        try:
            loop = f"consume-{durable}"
            await supervise(loop, consumer.step, backoff=backoff, on_error=on_error, stop=stop)
        finally:
            # a pull subscription's queue is only emptied by fetch(): left subscribed, it would
            # make the connection's drain at shutdown wait for ever
            await asyncio.shield(consumer.drop())
