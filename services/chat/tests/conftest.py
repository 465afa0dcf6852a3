"""Chat service fixtures: a migrated database, a fake auth directory, a recording notifier."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pydantic import BaseModel

from chainchat.crypto import DeviceKeys, PublicDeviceKey
from chainchat_chat.app import MIGRATIONS
from chainchat_chat.directory import NatsDirectory
from chainchat_chat.fanout import FanOut
from chainchat_chat.handlers import ChatHandlers
from chainchat_chat.messages import MessageService
from chainchat_chat.notify import NatsNotifier
from chainchat_chat.service import ConversationService
from chainchat_gateway.security import Principal
from chainchat_protocol.auth import (
    AUTH_KEYS_DEVICES,
    AUTH_USERS_GET,
    DeviceKey,
    DevicesReply,
    DevicesRequest,
    UsersGetReply,
    UsersGetRequest,
    UserSummary,
)
from chainchat_protocol.b64 import b64d, b64e
from chainchat_protocol.envelope import Envelope
from chainchat_protocol.errors import Unauthorized
from chainchat_service.bus import Bus
from chainchat_service.db import Database
from devstack.databases import fresh_database


@dataclass
class FakeDirectory:
    """Auth as chat sees it: active users and their current device key ids."""

    active: set[str] = field(default_factory=set)
    keys: dict[str, set[str]] = field(default_factory=dict)
    # what a cache would still answer (None: always fresh)
    stale: dict[str, set[str]] | None = None
    fresh_calls: int = 0

    def add_user(self, user_id: str, devices: int = 1) -> list[str]:
        self.active.add(user_id)
        self.keys[user_id] = {secrets.token_hex(16) for _ in range(devices)}
        return sorted(self.keys[user_id])

    async def active_users(self, user_ids: Collection[str]) -> set[str]:
        return set(user_ids) & self.active

    async def devices(self, user_ids: Collection[str], *, fresh: bool = False) -> dict[str, frozenset[str]]:
        source = self.keys if fresh or self.stale is None else self.stale
        self.fresh_calls += fresh
        return {u: frozenset(source.get(u, set())) for u in user_ids}

    def forget(self, user_id: str) -> None:
        if self.stale is not None:
            self.stale.pop(user_id, None)


@dataclass
class RecordingNotifier:
    sent: list[tuple[set[str], dict[str, Any]]] = field(default_factory=list)

    async def deliver(self, user_ids: Iterable[str], frame: BaseModel) -> None:
        self.sent.append((set(user_ids), frame.model_dump(mode="json", exclude_none=True)))

    def of_type(self, frame_type: str) -> list[tuple[set[str], dict[str, Any]]]:
        return [(users, frame) for users, frame in self.sent if frame["type"] == frame_type]


@dataclass
class Chat:
    db: Database
    directory: FakeDirectory
    notifier: RecordingNotifier
    conversations: ConversationService
    messages: MessageService
    fanout: FanOut


def make_chat(db: Database, directory: FakeDirectory | None = None) -> Chat:
    directory = directory or FakeDirectory()
    notifier = RecordingNotifier()
    return Chat(
        db=db,
        directory=directory,
        notifier=notifier,
        conversations=ConversationService(db, directory, notifier),
        messages=MessageService(db, directory, notifier),
        fanout=FanOut(db, notifier),
    )


async def _pg_database(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database("postgres", tmp_path, "chat") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every chat test runs on SQLite and on a fresh PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}"
        return
    async for url in _pg_database(tmp_path):
        yield url


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    db = Database(db_url)
    await db.migrate(MIGRATIONS)
    yield db
    await db.close()


@pytest.fixture
async def chat(db: Database) -> Chat:
    return make_chat(db)


@pytest.fixture
def envelope_for(chat: Chat) -> Callable[..., Envelope]:
    return make_envelope_factory(chat.directory)


def make_envelope_factory(directory: FakeDirectory) -> Callable[..., Envelope]:
    """Structurally valid envelopes (random bytes of the right sizes): the server never decrypts."""

    def build(conversation: str, sender: str, members: Iterable[str], /, **overrides: Any) -> Envelope:
        recipients = [
            {"user_id": u, "key_id": k, "enc": b64e(os.urandom(32)), "wrapped_key": b64e(os.urandom(48))}
            for u in sorted(members)
            for k in sorted(directory.keys.get(u, ()))
        ]
        fields: dict[str, Any] = {
            "v": 1,
            "suite": "hpke-x25519-aes256gcm",
            "conversation_id": conversation,
            "sender_id": sender,
            "sender_key_id": sorted(directory.keys[sender])[0],
            "nonce": b64e(os.urandom(12)),
            "ciphertext": b64e(os.urandom(48)),
            "recipients": recipients,
            "signature": b64e(os.urandom(64)),
        }
        fields.update(overrides)
        return Envelope.model_validate(fields)

    return build


@pytest.fixture
def chat_factory() -> Callable[..., Chat]:
    """Build another chat instance (its own services) on a given database."""
    return make_chat


@pytest.fixture
def envelope_factory() -> Callable[[FakeDirectory], Callable[..., Envelope]]:
    return make_envelope_factory


# --- a gateway + chat service on a private NATS server, in this process ------------------------


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
            raise Unauthorized("the access token is not valid", code="invalid_token")
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


@pytest.fixture(scope="module")
async def mini_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MiniStack]:
    """NATS (private), the chat handlers and a gateway served by uvicorn, all real but auth."""
    from chainchat_gateway.app import create_app
    from chainchat_gateway.settings import GatewaySettings
    from devstack.components import NatsServer
    from devstack.process import free_port

    tmp = tmp_path_factory.mktemp("mini")
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
    app = create_app(GatewaySettings(nats_url=nats.client_url("gateway"), http_port=port, environment="test"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
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
