"""Chat service fixtures: a migrated database, a fake auth directory, a recording notifier."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from chainchat_chat.app import MIGRATIONS
from chainchat_chat.fanout import FanOut
from chainchat_chat.messages import MessageService
from chainchat_chat.service import ConversationService
from chainchat_protocol.b64 import b64e
from chainchat_protocol.envelope import Envelope
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


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys in a frame: {keys}"
    return dict(pairs)


@dataclass
class RecordingNotifier:
    sent: list[tuple[set[str], dict[str, Any]]] = field(default_factory=list)

    async def deliver(self, user_ids: Iterable[str], frame: BaseModel) -> None:
        self.sent.append((set(user_ids), frame.model_dump(mode="json", exclude_none=True)))

    async def deliver_encoded(self, user_ids: Iterable[str], frame_type: str, payload: bytes) -> None:
        frame = json.loads(payload, object_pairs_hook=_no_duplicate_keys)
        assert frame["type"] == frame_type
        self.sent.append((set(user_ids), frame))

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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every chat test runs on SQLite and on a fresh PostgreSQL database (dropped afterwards)."""
    async with fresh_database(request.param, tmp_path, "chat") as url:
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
