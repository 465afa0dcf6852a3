"""The files service and the gateway's files routes against a real IPFS node and real NATS.

This module runs its own NATS server and IPFS node (so it may stop them) and serves the files
service and a gateway carrying only the files routes in-process; the chat service and token
checks are doubles (``chainchat_files.testing``). Two files instances share one database: the
default one (100 MiB limit) and one with a 1 MiB limit behind its own gateway.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
import pytest
from chainchat_files.app import create_app
from chainchat_files.settings import FilesSettings
from chainchat_files.testing import AppServer, FakeChat, LoopThread, files_gateway_app
from chainchat_gateway.routes.files import FilesRouteSettings
from chainchat_gateway.settings import GatewaySettings
from chainchat_protocol.files import FILE_ACCESS, FILE_GET, FileAccessRequest, FileGetRequest
from chainchat_protocol.rpc import RpcReply
from chainchat_protocol.subjects import Subject
from devstack.components import IpfsNode, NatsServer
from devstack.process import free_port

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
SMALL_LIMIT = MIB


@dataclass
class FilesEnv:
    tmp: Path
    loop: LoopThread
    nats: NatsServer
    ipfs: IpfsNode
    chat: FakeChat
    files: AppServer
    gateway: AppServer
    small_files: AppServer
    small_gateway: AppServer
    db_path: Path

    def client(self, user: str | None, *, small: bool = False) -> httpx.Client:
        headers = {"Authorization": f"Bearer user:{user}"} if user else {}
        base = (self.small_gateway if small else self.gateway).url
        return httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=60)

    def conversation(self, *members: str) -> str:
        conversation_id = f"conv-{uuid.uuid4().hex[:12]}"
        self.chat.members[conversation_id] = set(members)
        return conversation_id

    def db(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.db_path) as conn:
            rows = conn.execute(sql, args).fetchall()
            conn.commit()
            return rows

    def pins(self) -> set[str]:
        resp = httpx.post(f"{self.ipfs.api_url}/pin/ls", params={"type": "recursive"}, timeout=10)
        return set(resp.json()["Keys"])


def _start_files(env_tmp: Path, nats_url: str, ipfs_url: str, limit: int) -> AppServer:
    port = free_port()
    settings = FilesSettings(
        environment="test",
        nats_url=nats_url,
        ipfs_api_url=ipfs_url,
        database_url=f"sqlite:///{env_tmp / 'files.db'}",
        max_file_bytes=limit,
        http_port=port,
        ipfs_gc_interval_s=0,
    )
    return AppServer(create_app(settings), port)


def _start_gateway(nats_url: str, files_url: str, limit: int) -> AppServer:
    port = free_port()
    settings = GatewaySettings(environment="test", nats_url=nats_url, files_http_url=files_url, http_port=port)
    return AppServer(files_gateway_app(settings, FilesRouteSettings(max_file_bytes=limit)), port)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FilesEnv]:
    tmp = tmp_path_factory.mktemp("files-env")
    nats_server = NatsServer(tmp / "nats", port=free_port(), monitor_port=free_port())
    ipfs = IpfsNode(tmp / "ipfs", api_port=free_port(), gateway_port=free_port())
    nats_server.start()
    ipfs.start()
    loop = LoopThread()
    chat = FakeChat(nats_server.url)
    loop.run(chat.start())
    files = _start_files(tmp, nats_server.url, ipfs.api_url, 100 * MIB)
    loop.run(files.start())
    small_files = _start_files(tmp, nats_server.url, ipfs.api_url, SMALL_LIMIT)
    loop.run(small_files.start())
    gateway = _start_gateway(nats_server.url, files.url, 100 * MIB)
    small_gateway = _start_gateway(nats_server.url, small_files.url, SMALL_LIMIT)
    loop.run(gateway.start())
    loop.run(small_gateway.start())
    environment = FilesEnv(
        tmp, loop, nats_server, ipfs, chat, files, gateway, small_files, small_gateway, tmp / "files.db"
    )
    _wait_ready(files.url)
    try:
        yield environment
    finally:
        for server in (small_gateway, gateway, small_files, files):
            loop.run(server.stop())
        loop.run(chat.stop())
        loop.close()
        ipfs.stop()
        nats_server.stop()


def _wait_ready(url: str, ready: bool = True, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        resp = httpx.get(f"{url}/readyz", timeout=10)
        body = resp.json()
        if (resp.status_code == 200) is ready:
            return body
        time.sleep(0.2)
    raise AssertionError(f"readiness of {url} never became {ready}: {body}")


def _upload(client: httpx.Client, conversation_id: str, data: bytes) -> httpx.Response:
    return client.post(
        "/files",
        params={"conversation_id": conversation_id},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def _error_code(resp: httpx.Response) -> str:
    return str(resp.json()["error"]["code"])


# ---------------------------------------------------------------- upload and download


def test_upload_then_download_round_trip(env: FilesEnv) -> None:
    conv = env.conversation("alice", "bob")
    data = os.urandom(3 * MIB + 17)
    with env.client("alice") as alice, env.client("bob") as bob:
        resp = _upload(alice, conv, data)
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert set(body) == {"file_id", "cid", "size", "sha256"}
        assert body["size"] == len(data)
        assert body["sha256"] == hashlib.sha256(data).hexdigest()
        assert body["cid"].startswith("b")  # CIDv1, base32

        got = bob.get(f"/files/{body['file_id']}")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["etag"] == f'"{body["sha256"]}"'
    assert got.headers["accept-ranges"] == "bytes"
    assert got.headers["content-type"] == "application/octet-stream"
    assert body["cid"] in env.pins()
