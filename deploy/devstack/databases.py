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
