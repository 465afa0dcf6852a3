"""The Alembic migrations build exactly the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlmodel import SQLModel

from chainchat_auth.context import AuthContext


def _auth_metadata() -> MetaData:
    """Only the tables the auth service owns (other services' models share SQLModel.metadata
    when their tests run in the same process)."""
    from chainchat_auth import models

    names = {
        cls.__tablename__
        for cls in vars(models).values()
        if isinstance(cls, type) and issubclass(cls, SQLModel) and getattr(cls, "__table__", None) is not None
    } | {"outbox"}
    metadata = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        if table.name in names:
            table.to_metadata(metadata)
    return metadata


def _diff(connection: Any) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, _auth_metadata()))


async def test_migrated_schema_matches_the_models(ctx: AuthContext) -> None:
    async with ctx.db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


async def test_migrating_twice_is_a_no_op(ctx: AuthContext) -> None:
    from chainchat_auth.app import MIGRATIONS

    await ctx.db.migrate(MIGRATIONS)
