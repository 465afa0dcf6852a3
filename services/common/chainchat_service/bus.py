"""Typed NATS request/reply and JetStream access for every service.

Handlers receive a validated request model and return a reply model; any exception turns into an
error reply (never a requester timeout). The correlation id travels in a NATS header.
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

from chainchat_protocol.errors import ChainChatError, Unavailable, ValidationFailed, error_from_wire
from chainchat_protocol.rpc import CORRELATION_HEADER, Rpc, RpcReply, WireError
from chainchat_service.logging import correlation_id, get_logger, new_correlation_id

Req = TypeVar("Req", bound=BaseModel)
Rep = TypeVar("Rep", bound=BaseModel)

log = get_logger(__name__)

RPC_HANDLED = Counter("chainchat_rpc_handled_total", "NATS requests handled", ["subject", "outcome"])
RPC_LATENCY = Histogram("chainchat_rpc_handler_seconds", "NATS handler latency", ["subject"])
NATS_RECONNECTS = Counter("chainchat_nats_reconnects_total", "NATS reconnections")


class Bus:
    """One NATS connection per process, reconnecting for ever with bounded back-off."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self._nc: NatsClient | None = None
        self._connected = asyncio.Event()
        self._subs: list[Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise Unavailable("NATS is not connected", code="nats_unavailable")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream()

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def connect(self, max_wait: float = 5.0) -> None:
        """Connect, retrying with back-off (capped at ``max_wait`` seconds) until it works."""
        delay = 0.2
        while True:
            try:
                self._nc = await nats.connect(
                    servers=[self.url],
                    name=self.name,
                    connect_timeout=2,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    disconnected_cb=self._on_disconnect,
                    reconnected_cb=self._on_reconnect,
                    error_cb=self._on_error,
                )
                log.info("nats_connected", url=self.url)
                return
            except (TimeoutError, OSError, nats.errors.NoServersError) as exc:
                log.warning(
                    "nats_connect_retry", url=self.url, error=str(exc) or type(exc).__name__, delay=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_wait)

    async def _on_disconnect(self) -> None:
        log.warning("nats_disconnected", url=self.url)

    async def _on_reconnect(self) -> None:
        NATS_RECONNECTS.inc()
        log.info("nats_reconnected", url=self.url)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("nats_error", error=str(exc) or type(exc).__name__)

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
            raise Unavailable(f"the {service} service is unavailable", code="service_unavailable") from None
        except (TimeoutError, NatsTimeoutError):
            raise Unavailable(
                f"the {service} service did not answer in time", code="service_timeout"
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
                outcome = "ok" if reply.error is None else reply.error.code
                if msg.reply:
                    await msg.respond(reply.model_dump_json(exclude_none=True).encode())
                RPC_HANDLED.labels(rpc.subject, outcome).inc()
            finally:
                RPC_LATENCY.labels(rpc.subject).observe(time.perf_counter() - started)
                correlation_id.reset(token)

        self._subs.append(await self.nc.subscribe(rpc.subject, queue=queue or "", cb=dispatch))

    async def publish(self, subject: str, event: BaseModel) -> None:
        """Fire-and-forget core NATS event (deliveries to gateways)."""
        headers = {CORRELATION_HEADER: correlation_id.get() or new_correlation_id()}
        await self.nc.publish(subject, event.model_dump_json().encode(), headers=headers)


async def _handle(rpc: Rpc[Req, Rep], handler: Callable[[Req], Awaitable[Rep]], data: bytes) -> RpcReply:
    try:
        req = rpc.request.model_validate_json(data or b"{}")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        err = ValidationFailed(f"invalid {where}: {first.get('msg', 'invalid value')}")
        return _error_reply(err)
    try:
        rep = await handler(req)
        return RpcReply(data=rep.model_dump(mode="json"))
    except ChainChatError as err:
        return _error_reply(err)
    except Exception:  # noqa: BLE001 - a bug must still answer, not time the caller out
        log.exception("handler_failed", subject=rpc.subject)
        return RpcReply(error=WireError(code="internal_error", message="internal error", status=500))


def _error_reply(err: ChainChatError) -> RpcReply:
    retry_after: Any = getattr(err, "retry_after", None)
    return RpcReply(
        error=WireError(code=err.code, message=err.message, status=err.http_status, retry_after=retry_after)
    )
