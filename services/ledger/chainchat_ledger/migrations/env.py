"""Alembic environment of the ledger database (run by ``Database.migrate`` at start-up)."""

from sqlmodel import SQLModel

import chainchat_ledger.models  # noqa: F401 - registers the ledger tables on the metadata
from chainchat_service.db import run_alembic_env

run_alembic_env(SQLModel.metadata)
