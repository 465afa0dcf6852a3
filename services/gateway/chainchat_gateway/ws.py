"""The gateway's WebSocket hub: ``GET /api/v1/ws`` (SPEC §7 "WebSocket").

Authentication: the first frame ``{"type": "auth", "token"}``, or the subprotocols
``["chainchat.v1", "bearer.<token>"]`` (``chainchat.v1`` is echoed; a bad token is refused before
the upgrade with the SPEC 401 body). Never a token in the URL: URLs end up in logs.

Fan-in: each gateway subscribes on core NATS only to ``deliver.user.<id>.v1`` of users connected to
it — one subscription per user, shared by all their tabs and devices, dropped with the last one.
The chat service publishes every frame (message, receipt, deleted, typing, anchored, key_changed,
conversation) to the users it concerns, so the hub forwards payloads unchanged; it decides nothing
about who may see what. ``ready`` tells the client its subscription is live: anything committed
after it arrives live, anything before it comes from ``GET …/messages?after_seq=``.

Back-pressure: each connection has a bounded queue of outgoing frames. A client that does not
read fills it and is closed (4008) instead of holding memory or delaying others. A client that
sends nothing (not even ``ping``) for ``ws_idle_timeout_s`` is closed (4000). Sends from one
connection are processed in order, one at a time, beside reading (so ``ping`` stays instant).

Overload: a send is admitted only while the gateway has fewer sends unanswered than its limit
(``SendAdmission``: steered so that an admitted send queues about ``ws_send_target_wait_s``, between
``ws_min_sends_outstanding`` and ``ws_max_sends_outstanding``), and the connection fewer than
``ws_pending_sends`` queued; otherwise it is answered at once with
``rate_limited`` and a ``retry_after`` hint. A burst above capacity is refused in microseconds
instead of every accepted send waiting seconds behind it.

Abuse: every frame costs a token from a per-connection bucket (``ws_max_frames_per_s``, bursts up to
``ws_frame_burst``); a client that runs it dry is closed (1008, "too many frames"). A frame that is not
a JSON object with a string ``type`` gets an ``invalid_frame`` error; after ``ws_max_malformed_frames``
of them the connection is closed (1008) — a client that speaks another protocol will not recover.
An unknown ``type`` is answered the same way but not counted, so a newer client is not cut off.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import functools
import json
import math
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, WebSocket
from fastapi.responses import JSONResponse
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ValidationError

from chainchat_gateway.security import Principal
from chainchat_gateway.settings import GatewaySettings
from chainchat_protocol import chat
from chainchat_protocol.auth import AuthErrorCode, SessionsRevoked
from chainchat_protocol.chat import ErrorFrame, PongFrame, ReadyFrame
from chainchat_protocol.errors import ChainChatError, ErrorCode, GatewayErrorCode, Unauthorized
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger
from chainchat_service.runtime import ServiceRuntime

log = get_logger(__name__)

WS_PROTOCOL = "chainchat.v1"
BEARER_PREFIX = "bearer."

CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013
CLOSE_IDLE = 4000
CLOSE_UNAUTHORIZED = 4001
CLOSE_SLOW_CONSUMER = 4008

WS_CONNECTIONS = Gauge("chainchat_ws_connections", "Open authenticated WebSocket connections")
WS_USERS = Gauge("chainchat_ws_users", "Users with at least one connection (one NATS subscription each)")
WS_FRAMES_OUT = Counter("chainchat_ws_frames_out_total", "Frames queued to clients")
WS_SEND_LIMIT = Gauge("chainchat_ws_send_limit", "Sends the gateway admits unanswered at once now")
WS_SENDS_REFUSED = Counter("chainchat_ws_sends_refused_total", "Sends refused at once: gateway busy")
WS_CLOSED = Counter("chainchat_ws_closed_total", "Connections closed by the server", ["reason"])


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Principal: ...


def _frame(model: BaseModel) -> str:
    return model.model_dump_json(exclude_none=True)


class Connection:
    """One authenticated socket: its outgoing queue and why it is closing."""

    def __init__(self, ws: WebSocket, principal: Principal, settings: GatewaySettings) -> None:
        self.ws = ws
        self.principal = principal
        self.outgoing: asyncio.Queue[str] = asyncio.Queue(settings.ws_send_queue)
        # admitted sends with the moment they were admitted (the admission learns from their wait)
        self.sends: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue(settings.ws_pending_sends)
        self.closing = asyncio.Event()
        self.close_code = 1000
        self.close_reason = ""
        # per-connection scratch space of the frame handlers (e.g. typing throttles)
        self.state: dict[str, Any] = {}
        self.expires_at: float | None = None  # unix time the access token ends; re-auth extends it
        self.malformed = 0
        self.last_frame_at = time.monotonic()  # of the last frame received (the idle watch reads it)
        self._rate = settings.ws_max_frames_per_s
        self._burst = float(settings.ws_frame_burst)
        self._tokens = self._burst
        self._refilled = time.monotonic()

    def take_frame_token(self) -> bool:
        """One frame's worth of the token bucket; False when the client sends faster than allowed."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self._rate)
        self._refilled = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    @property
    def user_id(self) -> str:
        return self.principal.user_id

    def push(self, text: str) -> None:
        """Queue a frame; a client too slow to keep up is disconnected, never waited for."""
        if self.closing.is_set():
            return
        try:
            self.outgoing.put_nowait(text)
            WS_FRAMES_OUT.inc()
        except asyncio.QueueFull:
            self.close(CLOSE_SLOW_CONSUMER, "too slow: outgoing queue full, reconnect and catch up")

    def close(self, code: int, reason: str) -> None:
        if not self.closing.is_set():
            self.close_code, self.close_reason = code, reason
            self.closing.set()


class SendAdmission:
    """How many sends may be unanswered at once: a concurrency limit steered by answer latency,
    the way TCP Vegas steers a congestion window.

    Every half second the limit is multiplied by ``(base + target_wait_s) / mean``: ``mean`` is the
    window's average time from admission to answer, ``base`` the shortest answer of the last ten
    seconds (what a send costs without queueing). Queueing beyond ``target_wait_s`` shrinks the
    limit, less grows it (by at most 2× a window), between ``floor`` and ``ceiling``; at rest it sits
    at the ceiling. An admitted send therefore waits about ``target_wait_s`` more than the services
    need anyway, on a fast machine or a slow one: a limit of answers/s × ``target_wait_s`` (Little's
    law, the rule before this one) collapsed to the floor whenever every answer took longer than
    ``target_wait_s``, since the answer rate then shrank with the limit itself.
    """

    WINDOW_S = 0.5
    BASE_WINDOWS = 20  # the base latency is the minimum over the last 20 windows (10 s)

    def __init__(self, floor: int, ceiling: int, target_wait_s: float) -> None:
        self.ceiling = max(ceiling, 1)
        self.floor, self.target_wait_s = min(floor, self.ceiling), target_wait_s
        self.outstanding = 0
        self._limit = float(self.ceiling)
        self._window_start = time.monotonic()
        self._count, self._total, self._shortest = 0, 0.0, math.inf
        self._shortest_by_window: collections.deque[float] = collections.deque(maxlen=self.BASE_WINDOWS)

    @property
    def limit(self) -> int:
        return int(self._limit)

    def admit(self) -> bool:
        if self.outstanding >= self.limit:
            return False
        self.outstanding += 1
        return True

    def answered(self, latency_s: float) -> None:
        """One admitted send answered ``latency_s`` seconds after it was admitted."""
        self.outstanding -= 1
        self._count += 1
        self._total += latency_s
        self._shortest = min(self._shortest, latency_s)
        now = time.monotonic()
        if now - self._window_start < self.WINDOW_S:
            return
        self._shortest_by_window.append(self._shortest)
        base, mean = min(self._shortest_by_window), self._total / self._count
        gradient = 2.0 if mean <= 0 else min(2.0, max(0.5, (base + self.target_wait_s) / mean))
        self._limit = min(float(self.ceiling), max(float(self.floor), self._limit * gradient))
        self._window_start, self._count, self._total, self._shortest = now, 0, 0.0, math.inf
        WS_SEND_LIMIT.set(self.limit)

    def dropped(self, count: int) -> None:
        """Queued sends of a closed connection: no longer outstanding, never answered."""
        self.outstanding -= count


class _User:
    def __init__(self, subscription: Subscription) -> None:
        self.subscription = subscription
        self.connections: set[Connection] = set()


FrameHandler = Callable[[Connection, dict[str, Any]], Awaitable[BaseModel | None]]


class Hub:
    """Connections, their subscriptions and back-pressure; what frames *mean* is up to
    ``handlers`` (frame type → coroutine returning the frame to answer with, if any). ``send``
    frames of one connection are handled one at a time, in order; others concurrently."""

    def __init__(
        self,
        bus: Bus,
        verifier: Callable[[], TokenVerifier | None],
        settings: GatewaySettings,
        handlers: dict[str, FrameHandler],
    ) -> None:
        self.bus = bus
        self.verifier = verifier
        self.settings = settings
        self.handlers = handlers
        self._users: dict[str, _User] = {}
        self.admission = SendAdmission(
            min(settings.ws_min_sends_outstanding, settings.ws_max_sends_outstanding),
            settings.ws_max_sends_outstanding,
            settings.ws_send_target_wait_s,
        )
        self._lock = asyncio.Lock()
        self._revocations: Subscription | None = None

    async def start(self, bus: Bus) -> None:
        """Every gateway hears revocations: a logged-out or disabled session loses its sockets."""
        self._revocations = await bus.subscribe(Subject.AUTH_REVOKED, SessionsRevoked, self._on_revoked)

    async def serve(self, ws: WebSocket) -> None:
        authenticated = await self._authenticate(ws)
        if authenticated is None:
            return
        principal, token = authenticated
        conn = Connection(ws, principal, self.settings)
        conn.expires_at = token_expiry(token)
        try:
            await self._attach(conn)
        except Exception as exc:  # noqa: BLE001 - NATS down: the client retries later
            log.warning("ws_subscribe_failed", error=str(exc) or type(exc).__name__)
            await _close(ws, CLOSE_TRY_AGAIN, "messaging temporarily unavailable")
            return
        WS_CONNECTIONS.inc()
        try:
            conn.push(_frame(ReadyFrame(user_id=conn.user_id)))
            await self._run(conn)
        finally:
            WS_CONNECTIONS.dec()
            await self._detach(conn)

    async def _authenticate(self, ws: WebSocket) -> tuple[Principal, str] | None:
        offered: list[str] = list(ws.scope.get("subprotocols") or [])
        subprotocol = WS_PROTOCOL if WS_PROTOCOL in offered else None
        bearer = next((p.removeprefix(BEARER_PREFIX) for p in offered if p.startswith(BEARER_PREFIX)), None)
        if bearer is not None:
            try:
                principal = await self._verify(bearer)
            except ChainChatError as exc:
                await _refuse(ws, exc)
                return None
            await ws.accept(subprotocol=subprotocol)
            return principal, bearer
        await ws.accept(subprotocol=subprotocol)
        try:
            raw = await asyncio.wait_for(ws.receive_text(), self.settings.ws_auth_timeout_s)
            frame = chat.AuthFrame.model_validate_json(raw)
            return await self._verify(frame.token), frame.token
        except TimeoutError:
            await _close(ws, CLOSE_UNAUTHORIZED, "no auth frame")
        except (ValidationError, KeyError):
            await _send_error_and_close(ws, Unauthorized('the first frame must be {"type": "auth", "token"}'))
        except ChainChatError as exc:
            await _send_error_and_close(ws, exc)
        except Exception:  # noqa: BLE001 - the client went away during authentication
            pass
        return None

    async def _verify(self, token: str) -> Principal:
        verifier = self.verifier()
        if verifier is None:
            raise Unauthorized("authentication is not available yet", code=ErrorCode.UNAUTHORIZED)
        return await verifier.verify(token)

    async def _attach(self, conn: Connection) -> None:
        async with self._lock:
            user = self._users.get(conn.user_id)
            if user is None:
                subject = Subject.DELIVERY_TO_USER.format(user_id=conn.user_id)
                deliver = functools.partial(self._on_delivery, conn.user_id)
                user = _User(await self.bus.subscribe_raw(subject, deliver, label="delivery"))
                self._users[conn.user_id] = user
                WS_USERS.set(len(self._users))
            user.connections.add(conn)

    async def _detach(self, conn: Connection) -> None:
        async with self._lock:
            user = self._users.get(conn.user_id)
            if user is None:
                return
            user.connections.discard(conn)
            if not user.connections:
                del self._users[conn.user_id]
                WS_USERS.set(len(self._users))
                with contextlib.suppress(Exception):  # NATS may be reconnecting: the sub dies with it
                    await user.subscription.unsubscribe()

    async def _on_delivery(self, user_id: str, msg: Msg) -> None:
        """A frame for ``user_id`` (``deliver.user.<id>.v1``), forwarded unchanged to their sockets."""
        user = self._users.get(user_id)
        if user is None:
            return
        text = msg.data.decode("utf-8", errors="replace")
        for conn in list(user.connections):
            conn.push(text)

    async def _on_revoked(self, event: SessionsRevoked) -> None:
        sessions = {s.session_id for s in event.sessions}
        for user in list(self._users.values()):
            for conn in list(user.connections):
                if conn.principal.session_id in sessions:
                    conn.close(CLOSE_UNAUTHORIZED, "session revoked")

    async def _run(self, conn: Connection) -> None:
        tasks = [
            asyncio.create_task(self._read_loop(conn), name="ws-read"),
            asyncio.create_task(self._write_loop(conn), name="ws-write"),
            asyncio.create_task(self._send_loop(conn), name="ws-send"),
            asyncio.create_task(conn.closing.wait(), name="ws-closing"),
            asyncio.create_task(self._expiry_watch(conn), name="ws-expiry"),
            asyncio.create_task(self._idle_watch(conn), name="ws-idle"),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if conn.close_code != 1000:
            WS_CLOSED.labels(str(conn.close_code)).inc()
        await _close(conn.ws, conn.close_code, conn.close_reason)

    @staticmethod
    async def _expiry_watch(conn: Connection) -> None:
        """An access token lives 15 minutes; so does a socket, unless the client re-authenticates
        in band with ``{"type": "auth", "token": <fresh token>}``."""
        while True:
            if conn.expires_at is None:
                await conn.closing.wait()  # a token without expiry: nothing to watch
                return
            left = conn.expires_at - time.time()
            if left <= 0:
                break
            await asyncio.sleep(min(left, 60))
        conn.close(CLOSE_UNAUTHORIZED, "access token expired; reconnect with a fresh one")

    async def _idle_watch(self, conn: Connection) -> None:
        """Close a connection that sent nothing for ``ws_idle_timeout_s`` (4000). A watch beside
        the read loop, not a timeout around each receive: ``wait_for`` costs a task per frame."""
        idle = self.settings.ws_idle_timeout_s
        while True:
            left = conn.last_frame_at + idle - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(left)  # then look again: frames may have come in meanwhile
        conn.close(CLOSE_IDLE, f"idle for {idle:g} s")

    async def _reauthenticate(self, conn: Connection, frame: dict[str, Any]) -> None:
        token = frame.get("token")
        try:
            principal = await self._verify(token if isinstance(token, str) else "")
            if principal.user_id != conn.user_id:
                raise Unauthorized("the token belongs to another user", code=AuthErrorCode.INVALID_TOKEN)
        except ChainChatError as exc:
            conn.push(_frame(ErrorFrame(code=exc.code, message=exc.message)))
            return
        conn.principal, conn.expires_at = principal, token_expiry(str(token))

    async def _read_loop(self, conn: Connection) -> None:
        while True:
            message = await conn.ws.receive()
            conn.last_frame_at = time.monotonic()
            if message["type"] == "websocket.disconnect":
                conn.close(1000, "")
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
            if len(text) > self.settings.ws_max_frame_bytes:
                conn.close(CLOSE_TOO_BIG, "frame too large")
                return
            if not conn.take_frame_token():
                conn.close(CLOSE_POLICY, "too many frames: slow down")
                return
            self._on_frame(conn, text)
            if conn.malformed > self.settings.ws_max_malformed_frames:
                conn.close(CLOSE_POLICY, "too many malformed frames")
                return
            # frames that arrived together are all queued already: let the writer and the other
            # connections run between them, or a burst of pings fills the outgoing queue (4008)
            await asyncio.sleep(0)

    def _on_frame(self, conn: Connection, text: str) -> None:
        try:
            frame = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: a frame nested thousands deep
            frame = None
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "ping":
            conn.push(_frame(PongFrame()))
        elif kind == "auth":
            _spawn(self._reauthenticate(conn, frame))
        elif kind == "send" and kind in self.handlers:
            self._admit_send(conn, frame)
        elif isinstance(kind, str) and kind in self.handlers:
            _spawn(self._handle(conn, kind, frame))
        else:
            if not isinstance(kind, str):
                conn.malformed += 1
            error = ErrorFrame(
                code=GatewayErrorCode.INVALID_FRAME, message='frames are JSON objects with a known "type"'
            )
            conn.push(_frame(error))

    def _admit_send(self, conn: Connection, frame: dict[str, Any]) -> None:
        """Queue a send (one at a time per connection, in order, beside reading), or refuse it at
        once when this connection or the whole gateway has as many waiting as it can answer soon."""
        if not conn.sends.full() and self.admission.admit():
            conn.sends.put_nowait((time.monotonic(), frame))
            return
        client_id = frame.get("client_id") if isinstance(frame.get("client_id"), str) else None
        WS_SENDS_REFUSED.inc()
        conn.push(_frame(ErrorFrame(
            code=ErrorCode.RATE_LIMITED, message="too many sends in flight; retry shortly",
            client_id=client_id,
            retry_after=self.settings.ws_retry_after_s,
        )))  # fmt: skip

    async def _write_loop(self, conn: Connection) -> None:
        while True:
            text = await conn.outgoing.get()
            await conn.ws.send_text(text)

    async def _send_loop(self, conn: Connection) -> None:
        try:
            while True:
                admitted_at, frame = await conn.sends.get()
                try:
                    await self._handle(conn, "send", frame)
                finally:
                    self.admission.answered(time.monotonic() - admitted_at)
        finally:  # the connection closed with sends still queued: they no longer count
            self.admission.dropped(conn.sends.qsize())

    async def _handle(self, conn: Connection, kind: str, frame: dict[str, Any]) -> None:
        reply = await self.handlers[kind](conn, frame)
        if reply is not None:
            conn.push(_frame(reply))

    async def close(self) -> None:
        """Shutdown: tell every client to reconnect elsewhere."""
        for user in list(self._users.values()):
            for conn in list(user.connections):
                conn.close(CLOSE_GOING_AWAY, "gateway shutting down")


_background: set[asyncio.Task[None]] = set()


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    """Fire and forget, keeping a reference so the task is not garbage-collected mid-flight."""
    task = asyncio.create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a token the verifier has just accepted (so no second check here)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    # bounded: a client that stopped reading cannot take the close frame either
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code, reason[:120]), timeout=2)


async def _send_error_and_close(ws: WebSocket, exc: ChainChatError) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            ws.send_text(_frame(ErrorFrame(code=exc.code, message=exc.message))), timeout=2
        )
    await _close(ws, CLOSE_UNAUTHORIZED, exc.code)


async def _refuse(ws: WebSocket, exc: ChainChatError) -> None:
    """Refuse the upgrade: the SPEC error body with 401 when the server can, else a 403."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse(exc.body(), status_code=exc.http_status))
    else:
        await ws.close(CLOSE_UNAUTHORIZED)


router = APIRouter()


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    hub: Hub | None = getattr(websocket.app.state, "ws_hub", None)
    if hub is None:
        await websocket.close(CLOSE_TRY_AGAIN)
        return
    await hub.serve(websocket)


async def setup(app: FastAPI, runtime: ServiceRuntime, handlers: dict[str, FrameHandler]) -> None:
    hub = Hub(runtime.bus, lambda: getattr(app.state, "token_verifier", None), app.state.settings, handlers)
    app.state.ws_hub = hub
    runtime.on_connected(hub.start)


async def teardown(app: FastAPI, runtime: ServiceRuntime) -> None:
    hub: Hub | None = getattr(app.state, "ws_hub", None)
    if hub is not None:
        await hub.close()
