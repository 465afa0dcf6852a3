"""Test support: the files service and the gateway's files routes in-process, against real NATS and
a real IPFS node, with the two neighbours they ask questions to replaced by small doubles.

* :class:`StaticTokenVerifier` — the gateway's token check (``Bearer user:<id>``), so tests need
  no auth service;
* :class:`FakeChat` — answers ``chat.conversation.member.v1`` from a dict and publishes chat's
  ``MessagePosted`` / ``MessageDeleted`` events on JetStream, as the chat service does.

Everything runs on one background event loop (:class:`LoopThread`), so tests stay synchronous and
can use a blocking HTTP client without starving the servers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import nats
import uvicorn
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from chainchat_protocol.chat import (
    CHAT_CONVERSATION_MEMBER,
    ChatSubject,
    ConversationRequest,
    Membership,
    MessageDeleted,
    MessagePosted,
)
from chainchat_protocol.errors import NotFound, Unauthorized
from chainchat_protocol.rpc import RpcReply, WireError

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
            app, host="127.0.0.1", port=port, lifespan="on", log_config=None, access_log=False
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
            raise Unauthorized("invalid token", code="invalid_token")
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
            err = NotFound("no such conversation", code="conversation_not_found")
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
