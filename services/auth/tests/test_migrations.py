"""The Alembic migrations build exactly the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from chainchat_auth.context import AuthContext


def _diff(connection: Any) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_migrated_schema_matches_the_models(ctx: AuthContext) -> None:
    async with ctx.db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    # other services' tables may share SQLModel.metadata in one test process; only ours matter
    ours = [d for d in diff if d[0] != "add_table"]
    assert ours == []


async def test_migrating_twice_is_a_no_op(ctx: AuthContext) -> None:
    from chainchat_auth.app import MIGRATIONS

    await ctx.db.migrate(MIGRATIONS)
