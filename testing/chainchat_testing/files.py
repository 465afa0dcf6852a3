"""Test support: the files service and the gateway's files routes in-process, against real NATS and
a real IPFS node, with the two neighbours they ask questions to replaced by small doubles.

* :class:`StaticTokenVerifier` — the gateway's token check (``Bearer user:<id>``), so tests need
  no auth service;
* :class:`FakeChat` — answers ``chat.conversation.member.v1`` from a dict and publishes chat's
  ``MessagePosted`` / ``MessageDeleted`` events on JetStream, as the chat service does.

Everything runs on one background event loop (:class:`LoopThread`), so tests stay synchronous and
can use a blocking HTTP client without starving the servers. :func:`start_files_env` puts it all
together with its own NATS server and IPFS node (so a test may stop them).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import nats
import uvicorn
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from chainchat_protocol.auth import AuthErrorCode
from chainchat_protocol.chat import (
    CHAT_CONVERSATION_MEMBER,
    ChatErrorCode,
    ChatSubject,
    ConversationRequest,
    Membership,
    MessageDeleted,
    MessagePosted,
)
from chainchat_protocol.errors import NotFound, Unauthorized
from chainchat_protocol.rpc import RpcReply, WireError
from devstack.components import IpfsNode, NatsServer
from devstack.process import free_port

T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread; :meth:`run` executes a coroutine on it and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="files-test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class AppServer:
    """One ASGI app served by uvicorn on 127.0.0.1:``port`` (inside a :class:`LoopThread`)."""

    def __init__(self, app: FastAPI, port: int) -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,  # as run_http does for the real services
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        self._task = asyncio.create_task(self._server.serve())
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the server stopped during start-up")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"server on port {self.port} did not start")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await asyncio.wait_for(self._task, timeout=30)


class StaticTokenVerifier:
    """Accepts ``user:<id>`` as the access token of ``<id>`` (a member)."""

    async def verify(self, token: str) -> Any:
        from chainchat_gateway.security import Principal

        if not token.startswith("user:") or len(token) <= len("user:"):
            raise Unauthorized("invalid token", code=AuthErrorCode.INVALID_TOKEN)
        return Principal(user_id=token.removeprefix("user:"), role="member", session_id="s", token_id="t")


class FakeChat:
    """The chat service as the files service sees it: membership answers and message events."""

    def __init__(self, nats_url: str) -> None:
        self.nats_url = nats_url
        self.members: dict[str, set[str]] = {}
        self.asked = 0
        self._nc: NatsClient | None = None

    async def start(self) -> None:
        self._nc = await nats.connect(self.nats_url)
        await self._nc.subscribe(CHAT_CONVERSATION_MEMBER.subject, cb=self._on_member)
        stream = StreamConfig(name=ChatSubject.EVENTS_STREAM, subjects=["chat.message.*.v1"])
        await self._nc.jetstream().add_stream(stream)

    async def stop(self) -> None:
        if self._nc is not None:
            await self._nc.close()

    async def _on_member(self, msg: Msg) -> None:
        self.asked += 1
        req = ConversationRequest.model_validate_json(msg.data)
        if req.user_id in self.members.get(req.conversation_id, set()):
            reply = RpcReply(
                data=Membership(
                    conversation_id=req.conversation_id, user_id=req.user_id, role="member"
                ).model_dump()
            )
        else:
            err = NotFound("no such conversation", code=ChatErrorCode.CONVERSATION_NOT_FOUND)
            reply = RpcReply(error=WireError(code=err.code, message=err.message, status=err.http_status))
        await msg.respond(reply.model_dump_json(exclude_none=True).encode())

    async def post(self, message_id: str, conversation_id: str, sender_id: str, file_ids: list[str]) -> None:
        event = MessagePosted(
            message_id=message_id,
            conversation_id=conversation_id,
            sender_id=sender_id,
            seq=1,
            file_ids=file_ids,
            created_at="2026-01-01T00:00:00.000Z",
        )
        assert self._nc is not None
        await self._nc.jetstream().publish(ChatSubject.MESSAGE_POSTED, event.model_dump_json().encode())

    async def delete(self, message_id: str, conversation_id: str, file_ids: list[str]) -> None:
        """Publish a deletion (no ``Nats-Msg-Id``: publishing it twice is a redelivery)."""
        event = MessageDeleted(message_id=message_id, conversation_id=conversation_id, file_ids=file_ids)
        assert self._nc is not None
        await self._nc.jetstream().publish(ChatSubject.MESSAGE_DELETED, event.model_dump_json().encode())


def files_gateway_app(settings: Any, route_settings: Any) -> FastAPI:
    """A gateway with only the files routes (``/api/v1/files``) and :class:`StaticTokenVerifier`."""
    from chainchat_gateway.routes import files as files_routes
    from chainchat_service.web import create_service_app

    app = create_service_app(
        settings,
        title="ChainChat gateway (files routes)",
        setup=files_routes.setup,
        teardown=files_routes.teardown,
    )
    app.state.files_route_settings = route_settings
    app.state.token_verifier = StaticTokenVerifier()
    app.include_router(files_routes.router, prefix="/api/v1")
    return app


MIB = 1024 * 1024


@dataclass
class FilesEnv:
    """Own NATS + IPFS node; two files instances on one database (the default limit and ``small_limit``),
    each behind a gateway with only the files routes; :class:`FakeChat`; ``Bearer user:<id>`` tokens."""

    loop: LoopThread
    nats: NatsServer
    ipfs: IpfsNode
    chat: FakeChat
    files: AppServer
    gateway: AppServer
    small_files: AppServer
    small_gateway: AppServer
    db_path: Path
    small_limit: int

    def client(self, user: str | None, *, small: bool = False) -> httpx.Client:
        headers = {"Authorization": f"Bearer user:{user}"} if user else {}
        base = (self.small_gateway if small else self.gateway).url
        return httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=60)

    def conversation(self, *members: str) -> str:
        conversation_id = f"conv-{uuid.uuid4().hex[:12]}"
        self.chat.members[conversation_id] = set(members)
        return conversation_id

    def db(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            rows = conn.execute(sql, args).fetchall()
            conn.commit()
            return rows

    def pins(self) -> set[str]:
        resp = httpx.post(f"{self.ipfs.api_url}/pin/ls", params={"type": "recursive"}, timeout=10)
        return set(resp.json()["Keys"])

    def published_entry(self, msg_id: str, timeout: float = 10) -> dict[str, Any]:
        """The outbox row ``msg_id`` (a log entry) once the relay has published it to JetStream."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rows = self.db("SELECT payload, published_at FROM outbox WHERE msg_id = ?", msg_id)
            if rows and rows[0][1] is not None:
                return dict(json.loads(rows[0][0]))
            time.sleep(0.1)
        raise AssertionError(f"outbox row {msg_id} was not published")

    def close(self) -> None:
        """Stop everything (the component processes even when a server does not stop cleanly), then
        report the first failure."""
        errors: list[Exception] = []
        try:
            servers = (self.small_gateway, self.gateway, self.small_files, self.files)
            for stop in [*(server.stop for server in servers), self.chat.stop]:
                try:
                    self.loop.run(stop())
                except Exception as exc:  # noqa: BLE001 - keep stopping the rest
                    errors.append(exc)
            self.loop.close()
        finally:
            self.ipfs.stop()
            self.nats.stop()
        if errors:
            raise errors[0]


def files_server(tmp: Path, nats_url: str, ipfs_url: str, limit: int, secret: str = "") -> AppServer:
    """A files service (database ``tmp/files.db``), not started yet."""
    from chainchat_files.app import create_app
    from chainchat_files.settings import FilesSettings

    port = free_port()
    settings = FilesSettings(
        environment="test",
        nats_url=nats_url,
        ipfs_api_url=ipfs_url,
        database_url=f"sqlite:///{tmp / 'files.db'}",
        max_file_bytes=limit,
        http_port=port,
        ipfs_gc_interval_s=0,
        files_internal_secret=secret,
    )
    return AppServer(create_app(settings), port)


def gateway_server(nats_url: str, files_url: str, limit: int, secret: str = "") -> AppServer:
    """A gateway with only the files routes, streaming to ``files_url``; not started yet."""
    from chainchat_gateway.routes.files import FilesRouteSettings
    from chainchat_gateway.settings import GatewaySettings

    port = free_port()
    settings = GatewaySettings(
        environment="test", nats_url=nats_url, files_http_url=files_url, http_port=port
    )
    route_settings = FilesRouteSettings(max_file_bytes=limit, files_internal_secret=secret)
    return AppServer(files_gateway_app(settings, route_settings), port)


def start_files_env(tmp: Path, *, small_limit: int = MIB) -> FilesEnv:
    """Start a :class:`FilesEnv` in ``tmp``; call ``close()`` when done."""
    nats_server = NatsServer(tmp / "nats", port=free_port(), monitor_port=free_port())
    ipfs = IpfsNode(tmp / "ipfs", api_port=free_port(), gateway_port=free_port())
    nats_server.start()
    ipfs.start()
    loop = LoopThread()
    chat = FakeChat(nats_server.client_url("chat"))
    files = files_server(tmp, nats_server.client_url("files"), ipfs.api_url, 100 * MIB)
    small_files = files_server(tmp, nats_server.client_url("files"), ipfs.api_url, small_limit)
    gateway = gateway_server(nats_server.client_url("gateway"), files.url, 100 * MIB)
    small_gateway = gateway_server(nats_server.client_url("gateway"), small_files.url, small_limit)
    env = FilesEnv(
        loop,
        nats_server,
        ipfs,
        chat,
        files,
        gateway,
        small_files,
        small_gateway,
        tmp / "files.db",
        small_limit,
    )
    try:
        loop.run(chat.start())
        for server in (files, small_files, gateway, small_gateway):
            loop.run(server.start())
        wait_ready(files.url)
    except BaseException:
        env.close()  # never leave NATS or the IPFS node running behind a failed start
        raise
    return env


def wait_ready(url: str, ready: bool = True, timeout: float = 30) -> dict[str, Any]:
    """Poll ``{url}/readyz`` until it says ``ready``; return the last body."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = httpx.get(f"{url}/readyz", timeout=10)
        body = resp.json()
        if (resp.status_code == 200) is ready:
            return body
        time.sleep(0.2)
    raise AssertionError(f"readiness of {url} never became {ready}: {body}")


def upload(client: httpx.Client, conversation_id: str, content: Any, **headers: str) -> httpx.Response:
    """``POST /files`` as a client does it (``content``: bytes or an iterator of chunks)."""
    return client.post(
        "/files",
        params={"conversation_id": conversation_id},
        content=content,
        headers={"Content-Type": "application/octet-stream", **headers},
    )
