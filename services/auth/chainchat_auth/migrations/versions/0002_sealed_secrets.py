"""room for sealed secrets: TOTP secrets and signing keys are stored AES-GCM sealed (vault.py)

The values themselves are sealed by the service at start-up (``signing.reseal_all``), which holds
the data key; a migration never sees it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("user_account", "totp_secret", True),
    ("user_account", "totp_pending_secret", True),
    ("signing_key", "private_key", False),
)


def _resize(length: int) -> None:
    # batch mode: SQLite cannot alter a column's type in place, so the table is copied
    for table, column, nullable in _COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, type_=sa.String(length), existing_nullable=nullable)


def upgrade() -> None:
    _resize(200)


def downgrade() -> None:
    _resize(64)
