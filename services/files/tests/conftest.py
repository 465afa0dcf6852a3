"""Files service fixtures: a migrated database (SQLite and PostgreSQL) and an in-memory Kubo RPC API."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from chainchat_files.app import MIGRATIONS
from chainchat_files.ipfs import KuboClient
from chainchat_files.service import FileService
from chainchat_files.settings import FilesSettings
from chainchat_service.db import Database
from devstack.databases import fresh_database

_PART = re.compile(rb"\r\n\r\n(.*)\r\n--[0-9a-f]+--\r\n$", re.S)


@dataclass
class FakeKubo:
    """The Kubo RPC API in memory: content by CID, a pin set, and a switch to be down."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    pins: set[str] = field(default_factory=set)
    down: bool = False
    gc_runs: int = 0

    @staticmethod
    def cid_of(data: bytes) -> str:
        return "bafk" + hashlib.sha256(data).hexdigest()[:40]

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        command = request.url.path.removeprefix("/api/v0/")
        arg = request.url.params.get("arg", "")
        if command == "add":
            match = _PART.search(request.content)
            assert match is not None, "not a one-part multipart body"
            data = match.group(1)
            cid = self.cid_of(data)
            self.blobs[cid] = data
            if request.url.params.get("pin") == "true":
                self.pins.add(cid)
            return httpx.Response(
                200, text=json.dumps({"Name": "f", "Hash": cid, "Size": str(len(data))}) + "\n"
            )
        if command == "cat":
            if arg not in self.blobs:
                return _error("block was not found locally (offline)")
            offset = int(request.url.params.get("offset", "0"))
            length = request.url.params.get("length")
            end = None if length is None else offset + int(length)
            return httpx.Response(200, content=self.blobs[arg][offset:end])
        if command == "pin/rm":
            if arg not in self.pins:
                return _error("not pinned or pinned indirectly")
            self.pins.discard(arg)
            return httpx.Response(200, json={"Pins": [arg]})
        if command == "pin/add":
            self.pins.add(arg)
            return httpx.Response(200, json={"Pins": [arg]})
        if command == "pin/ls":
            if not arg:
                return httpx.Response(200, json={"Keys": {cid: {"Type": "recursive"} for cid in self.pins}})
            if arg not in self.pins:
                return _error(f"path '{arg}' is not pinned")
            return httpx.Response(200, json={"Keys": {arg: {"Type": "recursive"}}})
        if command == "repo/gc":
            self.gc_runs += 1
            return httpx.Response(200, text="")
        if command == "id":
            return httpx.Response(200, json={"ID": "12D3Koo-fake", "AgentVersion": "fake/1"})
        if command == "version":
            return httpx.Response(200, json={"Version": "0.0.0-fake"})
        return httpx.Response(404, text="404 page not found")


def _error(message: str) -> httpx.Response:
    return httpx.Response(500, json={"Message": message, "Code": 0, "Type": "error"})


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """Every service test runs on SQLite and on a fresh PostgreSQL database (dropped afterwards)."""
    async with fresh_database(request.param, tmp_path, "files") as url:
        database = Database(url)
        await database.migrate(MIGRATIONS)
        yield database
        await database.close()


@pytest.fixture
def kubo() -> FakeKubo:
    return FakeKubo()


@pytest.fixture
async def ipfs(kubo: FakeKubo) -> AsyncIterator[KuboClient]:
    client = KuboClient("http://ipfs.test/api/v0", transport=httpx.MockTransport(kubo.handle))
    yield client
    await client.aclose()


@dataclass
class Members:
    """chat's membership answer: conversation id → user ids."""

    of: dict[str, set[str]] = field(default_factory=dict)

    async def __call__(self, user_id: str, conversation_id: str) -> bool:
        return user_id in self.of.get(conversation_id, set())


@pytest.fixture
def members() -> Members:
    return Members({"c1": {"alice", "bob"}, "c2": {"mallory"}})


@pytest.fixture
def settings() -> FilesSettings:
    return FilesSettings(environment="test", max_file_bytes=1024 * 1024, ipfs_gc_interval_s=0)


@pytest.fixture
def service(db: Database, ipfs: KuboClient, settings: FilesSettings, members: Members) -> FileService:
    return FileService(db, ipfs, settings, is_member=members)
