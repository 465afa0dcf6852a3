"""Database access every service shares: SQLModel on SQLite (default) or PostgreSQL, Alembic migrations.

Each service owns one database. Schema changes go through the service's Alembic migrations
(``<service>/migrations``); ``Database.migrate`` runs them on start-up inside the service's own
connection, so SQLite and PostgreSQL follow the same path.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from chainchat_protocol.errors import ErrorCode, Unavailable


def utcnow() -> datetime:
    """Now, aware UTC: every timestamp a service stores."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (SQLite hands them back naive: they were stored as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# PostgreSQL's disk_full condition (SQLSTATE class 53: insufficient resources)
_PG_DISK_FULL = "53100"

T = TypeVar("T")
# both engines of a SQLite file: wait up to 30 s for another process's write lock
_SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": 30}


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            # no pre-ping: a file does not drop connections, and the ping was one more statement
            # (a thread round trip through aiosqlite) per checkout, i.e. per transaction
            options["connect_args"] = _SQLITE_CONNECT_ARGS
        else:
            # a PostgreSQL restart leaves dead connections in the pool: test each before use
            options.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        # SQLite has one write lock and waits for it by sleeping (1 ms, 2, 5, … up to 100 ms a try):
        # this process's hot writers (the chat send path, the outbox relay) queue here instead, in
        # order, without sleeping; PostgreSQL locks rows itself
        self.write_gate: contextlib.AbstractAsyncContextManager[Any] = (
            asyncio.Lock() if self.is_sqlite else contextlib.nullcontext()
        )
        # SQLite through aiosqlite costs four thread round trips per statement (cursor, execute,
        # fetch, close): a hot write transaction runs whole on a worker thread instead, on a plain
        # pysqlite engine of the same file (one round trip per transaction)
        self._sync_engine: Engine | None = None
        if self.is_sqlite:
            sync_url = make_url(url).set(drivername="sqlite")
            # the worker threads of asyncio.to_thread share the pool's connections
            connect_args = {**_SQLITE_CONNECT_ARGS, "check_same_thread": False}
            self._sync_engine = create_engine(sync_url, connect_args=connect_args)
            event.listen(self._sync_engine, "connect", _sqlite_pragmas)

    async def write_transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` on a synchronous connection inside one write transaction, under the write
        gate: on SQLite on a worker thread, on PostgreSQL through the async engine (``run_sync``).
        For a hot path of several statements; an exception rolls the transaction back."""
        async with self.write_gate:
            if self._sync_engine is not None:
                return await asyncio.to_thread(self._in_transaction, self._sync_engine, fn)
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)

    @staticmethod
    def _in_transaction(engine: Engine, fn: Callable[[Connection], T]) -> T:
        with engine.begin() as conn:
            return fn(conn)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; commit explicitly, anything not committed rolls back."""
        async with self._sessions() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def migrate(self, script_location: Path) -> None:
        """Bring the schema to the latest Alembic revision of ``script_location``."""
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                # several replicas may start at once: one migrates, the others wait for it
                await conn.execute(text("SELECT pg_advisory_xact_lock(7364720011)"))
            await conn.run_sync(_upgrade, script_location)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._sync_engine is not None:
            self._sync_engine.dispose()


def storage_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it wraps, says the database's disk is full: SQLite's
    SQLITE_FULL ("database or disk is full"), PostgreSQL's disk_full, or an OSError ENOSPC/EDQUOT."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        code = getattr(current, "sqlite_errorcode", None)  # set on errors raised by SQLite itself
        if isinstance(current, sqlite3.Error) and code == sqlite3.SQLITE_FULL:
            return True
        if _PG_DISK_FULL in (getattr(current, "sqlstate", None), getattr(current, "pgcode", None)):
            return True
        # SQLAlchemy keeps the driver's exception in .orig; drivers chain theirs as the cause
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return False


def storage_full_error() -> Unavailable:
    """What a client sees when a write failed because the disk is full: a 503, nothing half-saved
    (the transaction rolled back), worth retrying once an operator frees space."""
    return Unavailable(
        "the service's storage is full; nothing was saved, retry later", code=ErrorCode.STORAGE_FULL
    )


def _upgrade(connection: Connection, script_location: Path) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
    # WAL lets readers run beside the one writer; busy_timeout waits instead of failing at once.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def run_alembic_env(target_metadata: Any) -> None:
    """Body of every service's ``migrations/env.py``: uses the connection ``migrate`` passes in."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        url = context.config.get_main_option("sqlalchemy.url")
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
