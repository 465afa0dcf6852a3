"""Typed NATS request/reply, events and JetStream consumers for every service (the JetStream
half is in :mod:`chainchat_service.jetstream`).

Handlers receive a validated request model and return a reply model; any exception turns into an
error reply (never a requester timeout). The correlation id travels in a NATS header. Events
(``subscribe``) and durable stream consumers (``consume``) hand their handlers validated models
too; a payload that does not validate is logged and dropped (terminated on a stream), and a
failing handler never ends the subscription.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError

from chainchat_protocol.errors import (
    ChainChatError,
    ErrorCode,
    Unavailable,
    ValidationFailed,
    error_from_wire,
)
from chainchat_protocol.rpc import CORRELATION_HEADER, Rpc, RpcReply, WireError
from chainchat_service.db import storage_full, storage_full_error
from chainchat_service.jetstream import (
    JetStreamOps,
    first_error,
)
from chainchat_service.logging import correlation_id, get_logger, new_correlation_id
from chainchat_service.loops import Backoff

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)
Ev = TypeVar("Ev", bound=BaseModel)

log = get_logger(__name__)

RPC_HANDLED = Counter("chainchat_rpc_handled_total", "NATS requests handled", ["subject", "outcome"])
RPC_LATENCY = Histogram("chainchat_rpc_handler_seconds", "NATS handler latency", ["subject"])
NATS_RECONNECTS = Counter("chainchat_nats_reconnects_total", "NATS reconnections")
EVENTS_HANDLED = Counter("chainchat_events_handled_total", "Core NATS events handled", ["event", "outcome"])


STREAM_ADMIN_TIMEOUT_S = 20.0


def redact_url(url: str) -> str:
    """``url`` without the password of its user info (``nats://user:***@host``) for logs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


class Bus(JetStreamOps):
    """One NATS connection per process, reconnecting for ever with bounded back-off; typed RPC and
    events here, streams, KV buckets and pull consumers from :class:`JetStreamOps`.

    ``url`` may list several servers of a cluster, comma-separated; the client fails over between
    them (and to servers the cluster announces). ``stream_replicas`` is how many copies of each
    JetStream stream/KV bucket this deployment keeps (1 on a single server, 3 on a 3-node cluster).
    """

    def __init__(
        self,
        url: str,
        name: str,
        *,
        stream_replicas: int = 1,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.servers = [part.strip() for part in url.split(",") if part.strip()]
        self.url = ",".join(redact_url(s) for s in self.servers)  # what logs show
        self._user = user
        self._password = password
        self.name = name
        self.stream_replicas = stream_replicas
        self._nc: NatsClient | None = None
        self._connected = asyncio.Event()
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise Unavailable("NATS is not connected", code=ErrorCode.NATS_UNAVAILABLE)
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream()

    @property
    def _admin(self) -> JetStreamContext:
        # creating or re-replicating a stream waits for a cluster-wide agreement: on a busy cluster
        # that takes longer than the 5 s a publish or fetch may wait
        return self.nc.jetstream(timeout=STREAM_ADMIN_TIMEOUT_S)

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def connect(self, max_wait: float = 5.0) -> None:
        """Connect, retrying with back-off (capped at ``max_wait`` seconds) until it works."""
        backoff = Backoff(0.2, max_wait)
        delay = backoff.initial
        while True:
            try:
                self._nc = await nats.connect(
                    servers=self.servers,
                    name=self.name,
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    disconnected_cb=self._on_disconnect,
                    reconnected_cb=self._on_reconnect,
                    error_cb=self._on_error,
                    user=self._user,
                    password=self._password,
                )
                log.info("nats_connected", url=self.url, server=self.server)
                return
            except (TimeoutError, OSError, nats.errors.NoServersError, nats.errors.Error) as exc:
                log.warning(
                    "nats_connect_retry", url=self.url, error=str(exc) or type(exc).__name__, delay=delay
                )
                await asyncio.sleep(delay)
                delay = backoff.next(delay)

    async def _on_disconnect(self) -> None:
        log.warning("nats_disconnected", url=self.url)

    @property
    def server(self) -> str | None:
        """``host:port`` of the server this process is connected to now (None when not connected).
        Never the URL's user info: the logs name the server, they never carry the bus password."""
        url = self._nc.connected_url if self._nc is not None and self._nc.is_connected else None
        return f"{url.hostname}:{url.port}" if url is not None else None

    async def _on_reconnect(self) -> None:
        NATS_RECONNECTS.inc()
        log.info("nats_reconnected", url=self.url, server=self.server)

    async def _on_error(self, exc: Exception) -> None:
        # a permissions violation is a bug or an attack: say so; the rest is connection noise
        level = log.warning if "permission" in str(exc).lower() else log.debug
        level("nats_error", error=str(exc) or type(exc).__name__)

    async def close(self) -> None:
        if self._nc is not None:
            try:
                await self._nc.drain()
            except Exception:  # noqa: BLE001 - closing anyway
                await self._nc.close()
            self._nc = None

    async def request(self, rpc: Rpc[Req, Rep], req: Req, *, timeout: float = 5.0) -> Rep:
        """Send a typed request; raise the remote ChainChatError or ``Unavailable``."""
        headers = {CORRELATION_HEADER: correlation_id.get() or new_correlation_id()}
        service = rpc.subject.split(".", 1)[0]
        try:
            msg = await self.nc.request(
                rpc.subject, req.model_dump_json().encode(), timeout=timeout, headers=headers
            )
        except NoRespondersError:
            raise Unavailable(
                f"the {service} service is unavailable", code=ErrorCode.SERVICE_UNAVAILABLE
            ) from None
        except (TimeoutError, NatsTimeoutError):
            raise Unavailable(
                f"the {service} service did not answer in time", code=ErrorCode.SERVICE_TIMEOUT
            ) from None
        reply = RpcReply.model_validate_json(msg.data)
        if reply.error is not None:
            e = reply.error
            raise error_from_wire(e.code, e.message, e.status, e.retry_after)
        return rpc.reply.model_validate(reply.data or {})

    async def serve(
        self,
        rpc: Rpc[Req, Rep],
        handler: Callable[[Req], Awaitable[Rep]],
        *,
        queue: str | None = None,
        concurrency: int = 32,
    ) -> None:
        """Subscribe ``handler`` on the subject, in a queue group so instances share the load.

        Up to ``concurrency`` requests run at once per subscription (nats-py delivers one message
        at a time to a callback, so a slow request would otherwise hold up the ones behind it).
        """
        slots = asyncio.Semaphore(concurrency)

        async def dispatch(msg: Msg) -> None:
            await slots.acquire()
            task = asyncio.create_task(run(msg))
            self._tasks.add(task)
            task.add_done_callback(lambda t: (self._tasks.discard(t), slots.release()))

        async def run(msg: Msg) -> None:
            cid = (msg.headers or {}).get(CORRELATION_HEADER) or new_correlation_id()
            token = correlation_id.set(cid)
            started = time.perf_counter()
            try:
                reply = await _handle(rpc, handler, msg.data)
                data = reply.model_dump_json(exclude_none=True).encode()
                if len(data) > self.nc.max_payload:  # the server would refuse it: answer anyway
                    log.error("reply_too_large", subject=rpc.subject, size=len(data))
                    reply = _error_reply(
                        Unavailable("the reply is too large", code=ErrorCode.REPLY_TOO_LARGE)
                    )
                    data = reply.model_dump_json(exclude_none=True).encode()
                outcome = "ok" if reply.error is None else reply.error.code
                if msg.reply:
                    await msg.respond(data)
                RPC_HANDLED.labels(rpc.subject, outcome).inc()
            finally:
                RPC_LATENCY.labels(rpc.subject).observe(time.perf_counter() - started)
                correlation_id.reset(token)

        self._subs.append(await self.nc.subscribe(rpc.subject, queue=queue or "", cb=dispatch))

    async def publish(self, subject: str, event: BaseModel) -> None:
        """Fire-and-forget core NATS event (deliveries to gateways)."""
        headers = {CORRELATION_HEADER: correlation_id.get() or new_correlation_id()}
        await self.nc.publish(subject, event.model_dump_json().encode(), headers=headers)

    async def subscribe(
        self,
        subject: str,
        event: type[Ev],
        handler: Callable[[Ev], Awaitable[None]],
        *,
        queue: str | None = None,
    ) -> Subscription:
        """Hand every core NATS event on ``subject`` to ``handler`` as a validated ``event``.

        Without ``queue`` every instance hears every event (caches, sockets); with one, one
        instance of the group does. A payload that does not validate is logged (its size, never
        its content) and dropped; a handler that raises is logged and the subscription goes on.
        NATS re-establishes the subscription after a reconnect, like those of ``serve``. The
        returned subscription may be ``unsubscribe()``d.
        """
        label = event.__name__

        async def deliver(msg: Msg) -> None:
            try:
                parsed = event.model_validate_json(msg.data)
            except ValidationError as exc:
                log.warning("event_invalid", subject=msg.subject, model=label, size=len(msg.data),
                            error=first_error(exc))  # fmt: skip
                raise _Dropped from None
            await handler(parsed)

        return await self.subscribe_raw(subject, deliver, queue=queue, label=label)

    async def subscribe_raw(
        self,
        subject: str,
        handler: Callable[[Msg], Awaitable[None]],
        *,
        queue: str | None = None,
        label: str = "raw",
    ) -> Subscription:
        """``subscribe`` for a handler that needs the message itself (its subject, its payload
        forwarded unchanged): the same queue groups, error containment and re-subscription."""

        async def deliver(msg: Msg) -> None:
            cid = (msg.headers or {}).get(CORRELATION_HEADER) or new_correlation_id()
            token = correlation_id.set(cid)
            try:
                await handler(msg)
                EVENTS_HANDLED.labels(label, "ok").inc()
            except _Dropped:
                EVENTS_HANDLED.labels(label, "invalid").inc()
            except Exception:  # noqa: BLE001 - one failed event must not end the subscription
                EVENTS_HANDLED.labels(label, "failed").inc()
                log.exception("event_handler_failed", subject=msg.subject, model=label)
            finally:
                correlation_id.reset(token)

        # not kept in _subs: a per-user subscription is dropped again by its owner
        return await self.nc.subscribe(subject, queue=queue or "", cb=deliver)


class _Dropped(Exception):
    """An event that did not validate: logged where it was decoded, counted once."""


async def _handle(rpc: Rpc[Req, Rep], handler: Callable[[Req], Awaitable[Rep]], data: bytes) -> RpcReply:
    try:
        req = rpc.request.model_validate_json(data or b"{}")
    except ValidationError as exc:
        return _error_reply(ValidationFailed(first_error(exc)))
    try:
        rep = await handler(req)
        return RpcReply(data=rep.model_dump(mode="json"))
    except ChainChatError as err:
        return _error_reply(err)
    except Exception as exc:  # noqa: BLE001 - a bug must still answer, not time the caller out
        if storage_full(exc):
            log.error("storage_full", subject=rpc.subject, error=str(exc)[:200])
            return _error_reply(storage_full_error())
        log.exception("handler_failed", subject=rpc.subject)
        return RpcReply(error=WireError(code=ErrorCode.INTERNAL_ERROR, message="internal error", status=500))


def _error_reply(err: ChainChatError) -> RpcReply:
    retry_after: Any = getattr(err, "retry_after", None)
    return RpcReply(
        error=WireError(code=err.code, message=err.message, status=err.http_status, retry_after=retry_after)
    )
