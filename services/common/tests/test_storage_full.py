"""A full disk under a service's database is a 503 ``storage_full``, over NATS and over HTTP.

SQLite raises the same SQLITE_FULL ("database or disk is full") when it hits ``max_page_count`` as
when the filesystem has no space left, so these tests get a real full database without root;
tests/chaos/test_disk_full.py fills a real tmpfs under a running chat service.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text

from chainchat_protocol.errors import Unavailable
from chainchat_protocol.rpc import Rpc
from chainchat_service.bus import Bus
from chainchat_service.db import Database, storage_full
from chainchat_service.web import install_error_handlers
from devstack.components import NatsServer


class Note(BaseModel):
    text: str


class Saved(BaseModel):
    ok: bool


SAVE = Rpc("test.storage.save.v1", Note, Saved)


async def _full_database(tmp_path: Path) -> Database:
    """A real database that refuses to grow: SQLITE_FULL on the next page it needs."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'full.db'}")
    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE note (body TEXT NOT NULL)"))
    return db


async def _save(db: Database, body: str) -> None:
    async with db.engine.begin() as conn:
        page_count = (await conn.execute(text("PRAGMA page_count"))).scalar_one()
        await conn.execute(text(f"PRAGMA max_page_count = {int(page_count)}"))
        await conn.execute(text("INSERT INTO note (body) VALUES (:b)"), {"b": body})


async def test_a_real_sqlite_full_error_is_recognised_through_sqlalchemy(tmp_path: Path) -> None:
    db = await _full_database(tmp_path)
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - any wrapper; the cause matters
            await _save(db, "x" * 200_000)
        assert storage_full(caught.value)
    finally:
        await db.close()


def test_other_errors_are_not_storage_full() -> None:
    assert storage_full(OSError(errno.ENOSPC, "No space left on device"))
    assert not storage_full(OSError(errno.EACCES, "Permission denied"))
    assert not storage_full(sqlite3.IntegrityError("UNIQUE constraint failed"))
    # a message text alone (e.g. a user's input echoed in an error) does not count
    assert not storage_full(ValueError("database or disk is full"))
    wrapped = RuntimeError("write failed")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert storage_full(wrapped)  # found through the chain of causes


async def test_a_handler_on_a_full_disk_answers_503_storage_full(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    db = await _full_database(tmp_path)
    bus = Bus(nats_server.client_url(), "storage-test")
    await bus.connect()

    async def save(req: Note) -> Saved:
        await _save(db, req.text)
        return Saved(ok=True)

    try:
        await bus.serve(SAVE, save, queue="storage-test")
        with pytest.raises(Unavailable) as err:
            await bus.request(SAVE, Note(text="x" * 200_000), timeout=5)
        assert err.value.http_status == 503
        assert err.value.code == "storage_full"
        assert "full" in err.value.message
        assert "sqlite" not in err.value.message.lower()
    finally:
        await bus.close()
        await db.close()


async def test_an_http_route_on_a_full_disk_answers_503_without_a_trace(tmp_path: Path) -> None:
    db = await _full_database(tmp_path)
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/notes")
    async def create(note: Note) -> Saved:
        await _save(db, note.text)
        return Saved(ok=True)

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            resp = await client.post("/notes", json={"text": "x" * 200_000})
        assert resp.status_code == 503
        assert resp.json()["error"]["code"] == "storage_full"
        assert "INSERT" not in resp.text
        assert "Traceback" not in resp.text
    finally:
        await db.close()
