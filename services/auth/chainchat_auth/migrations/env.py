"""Alembic environment of the auth database (run by ``Database.migrate`` at start-up)."""

from sqlmodel import SQLModel

import chainchat_auth.models  # noqa: F401 - registers the auth tables on the metadata
import chainchat_service.outbox  # noqa: F401 - the shared outbox table lives in this database too
from chainchat_service.db import run_alembic_env

run_alembic_env(SQLModel.metadata)
