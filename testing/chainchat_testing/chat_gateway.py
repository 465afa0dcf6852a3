"""Test support: the gateway's chat API and WebSocket hub in front of the real chat handlers, over
a private NATS server; only auth is replaced (:class:`FakeAuth`: tokens "token-<user>", real device
keys), so envelopes sealed with the SDK provably travel through a server that cannot read them."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn

from chainchat.crypto import DeviceKeys, PublicDeviceKey
from chainchat_chat.app import MIGRATIONS
from chainchat_chat.directory import NatsDirectory
from chainchat_chat.fanout import FanOut
from chainchat_chat.handlers import ChatHandlers
from chainchat_chat.messages import MessageService
from chainchat_chat.notify import NatsNotifier
from chainchat_chat.service import ConversationService
from chainchat_gateway.app import create_app
from chainchat_gateway.security import Principal
from chainchat_gateway.settings import GatewaySettings
from chainchat_protocol.auth import (
    AUTH_KEYS_DEVICES,
    AUTH_USERS_GET,
    AuthErrorCode,
    DeviceKey,
    DevicesReply,
    DevicesRequest,
    UsersGetReply,
    UsersGetRequest,
    UserSummary,
)
from chainchat_protocol.b64 import b64d, b64e
from chainchat_protocol.errors import Unauthorized
from chainchat_service.bus import Bus
from chainchat_service.db import Database
from devstack.components import NatsServer
from devstack.process import free_port


def _device_key(device: DeviceKeys) -> DeviceKey:
    return DeviceKey(
        key_id=device.key_id,
        x25519_public=b64e(device.x25519_public),
        ed25519_public=b64e(device.ed25519_public),
        suite_support=["hpke-x25519-aes256gcm"],
        created_at=datetime.now(UTC),
    )


class FakeAuth:
    """Auth's directory subjects over NATS, with real device keys, and tokens "token-<user>"."""

    def __init__(self) -> None:
        self.devices: dict[str, list[DeviceKeys]] = {}
        self.admins: set[str] = set()

    def add_user(self, user_id: str, devices: int = 1) -> list[DeviceKeys]:
        self.devices[user_id] = [DeviceKeys.generate() for _ in range(devices)]
        return self.devices[user_id]

    def public_keys(self, user_ids: Iterable[str]) -> list[PublicDeviceKey]:
        return [d.public(u) for u in sorted(user_ids) for d in self.devices.get(u, [])]

    async def users_get(self, req: UsersGetRequest) -> UsersGetReply:
        known = [u for u in req.user_ids if u in self.devices]
        return UsersGetReply(
            users=[UserSummary(id=u, display_name=u, status="active", role="member") for u in known]
        )

    async def keys_devices(self, req: DevicesRequest) -> DevicesReply:
        return DevicesReply(
            devices={u: [_device_key(d) for d in self.devices.get(u, [])] for u in req.user_ids}
        )

    async def verify(self, token: str) -> Principal:
        user_id = token.removeprefix("token-")
        if token.count(".") == 2:  # "x.<base64url claims>.y": a token with an expiry, for the hub
            claims = json.loads(b64d(token.split(".")[1]))
            user_id = claims["sub"] if claims["exp"] > time.time() else ""
            token = f"token-{user_id}"
        if not token.startswith("token-") or user_id not in self.devices:
            raise Unauthorized("the access token is not valid", code=AuthErrorCode.INVALID_TOKEN)
        role = "admin" if user_id in self.admins else "member"
        return Principal(user_id=user_id, role=role, session_id=f"session-{user_id}", token_id="t")


@dataclass
class MiniStack:
    url: str
    nats_url: str
    auth: FakeAuth
    bus: Bus
    app: Any

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/api/v1/ws"

    @staticmethod
    def headers(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer token-{user_id}"}

    @staticmethod
    def expiring_token(user_id: str, seconds: float) -> str:
        claims = json.dumps({"sub": user_id, "exp": time.time() + seconds}).encode()
        return f"h.{b64e(claims)}.s"


@asynccontextmanager
async def start_mini_stack(tmp: Path) -> AsyncIterator[MiniStack]:
    """NATS (private, under ``tmp``), the chat handlers and a gateway served by uvicorn, all real
    but auth."""
    nats = NatsServer(tmp / "nats", port=free_port(), monitor_port=free_port())
    nats.start()
    db = Database(f"sqlite+aiosqlite:///{tmp / 'chat.db'}")
    await db.migrate(MIGRATIONS)
    bus = Bus(nats.client_url(), "chat-under-test")  # the operator: it plays auth too
    await bus.connect()
    auth = FakeAuth()
    await bus.serve(AUTH_USERS_GET, auth.users_get, queue="auth")
    await bus.serve(AUTH_KEYS_DEVICES, auth.keys_devices, queue="auth")
    directory = NatsDirectory(bus, ttl_s=0)
    notifier = NatsNotifier(bus)
    handlers = ChatHandlers(
        ConversationService(db, directory, notifier), MessageService(db, directory, notifier), directory,
        FanOut(db, notifier),
    )  # fmt: skip
    await handlers.register(bus)
    port = free_port()
    settings = GatewaySettings(nats_url=nats.client_url("gateway"), http_port=port, environment="test")
    app = create_app(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, lifespan="on",
        ws_per_message_deflate=settings.ws_per_message_deflate,  # as `python -m chainchat_gateway`
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    await app.state.runtime.wait_started(timeout=10)
    app.state.token_verifier = auth  # after start-up: the auth routes install the real one
    try:
        yield MiniStack(
            url=f"http://127.0.0.1:{port}", nats_url=nats.client_url(), auth=auth, bus=bus, app=app
        )
    finally:
        server.should_exit = True
        await task
        await bus.close()
        await db.close()
        nats.stop()
