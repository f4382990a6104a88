"""When each task was last reopened (watched again after it ended), so that give-up-after counts
from then rather than from its registration (docs/tables.md). Null for a task never reopened:
every existing one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("reopened_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    # Not in batch mode: SQLite's copy of the table would lose the index on lower(status),
    # which it cannot reflect. SQLite drops an unindexed column in place since 3.35.
    op.drop_column("tasks", "reopened_at")
