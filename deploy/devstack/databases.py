"""Empty databases for tests: a SQLite file, or a fresh PostgreSQL database dropped afterwards.

PostgreSQL comes from ``CHAINCHAT_TEST_PG`` (default: the local server, trust auth). Without a
server the test is skipped on a developer machine but fails under CI, where one must be there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

PG_URL = os.environ.get("CHAINCHAT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _async_url(base: str, name: str) -> str:
    server = base.split("://", 1)[1].rsplit("/", 1)[0]
    return f"postgresql+asyncpg://{server}/{name}"


@asynccontextmanager
async def fresh_database(kind: str, tmp_path: Path, service: str) -> AsyncIterator[str]:
    """The async SQLAlchemy URL of an empty database of ``kind`` ("sqlite" or "postgres")."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / f'{service}.db'}"
        return
    import asyncpg

    try:
        admin = await asyncpg.connect(PG_URL, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI but {PG_URL} does not answer: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    name = f"chainchat_{service}_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _async_url(PG_URL, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


# ---------------------------------------------------------------- databases for a whole stack


def database_url(name: str, base: str = PG_URL) -> str:
    """The plain ``postgresql://`` URL of database ``name`` on the server of ``base``."""
    scheme, rest = base.split("://", 1)
    return f"{scheme}://{rest.rsplit('/', 1)[0]}/{name}"


def _run_admin(statements: list[str], base: str) -> None:
    """Run admin statements (CREATE/DROP DATABASE) on the server, from sync code, in a thread so a
    running event loop in the caller's thread is never touched."""
    import asyncio
    import threading

    import asyncpg

    errors: list[BaseException] = []

    async def run() -> None:
        admin = await asyncpg.connect(base, timeout=5)
        try:
            for statement in statements:
                await admin.execute(statement)
        finally:
            await admin.close()

    def target() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="pg-admin")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


def create_stack_databases(services: list[str], base: str = PG_URL) -> dict[str, str]:
    """One fresh, empty database per service; returns service -> database name."""
    tag = uuid.uuid4().hex[:10]
    names = {service: f"chainchat_{tag}_{service}" for service in services}
    _run_admin([f'CREATE DATABASE "{name}"' for name in names.values()], base)
    return names


def drop_stack_databases(names: list[str], base: str = PG_URL) -> None:
    _run_admin([f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' for name in names], base)
