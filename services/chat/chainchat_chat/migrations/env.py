"""Alembic environment of the chat database (run by ``Database.migrate`` at start-up)."""

import chainchat_chat.models  # noqa: F401 - registers the chat tables (and the outbox) on the metadata
from chainchat_service.db import run_alembic_env
from sqlmodel import SQLModel

run_alembic_env(SQLModel.metadata)
