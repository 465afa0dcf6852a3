"""Alembic environment of the chat database (run by ``Database.migrate`` at start-up)."""

from sqlmodel import SQLModel

import chainchat_chat.models  # noqa: F401 - registers the chat tables (and the outbox) on the metadata
from chainchat_service.db import run_alembic_env

run_alembic_env(SQLModel.metadata)
