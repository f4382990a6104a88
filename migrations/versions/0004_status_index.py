"""An index for listing one status's tasks newest first, so that a rare status (or one no task
has) is a short read rather than a walk through every registration.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_tasks_status_registered_at_task_id",
        "tasks",
        [sa.text("lower(status)"), "registered_at", "task_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_status_registered_at_task_id", table_name="tasks")
