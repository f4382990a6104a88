"""An index for listing one label's unfinished tasks newest first, so that a label whose tasks
are nearly all finished is a short read rather than a walk through all of them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNFINISHED = sa.column("finished") == sa.false()


def upgrade() -> None:
    op.create_index(
        "ix_tasks_unfinished_label_registered_at_task_id",
        "tasks",
        ["label", "registered_at", "task_id"],
        sqlite_where=_UNFINISHED,
        postgresql_where=_UNFINISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_unfinished_label_registered_at_task_id", table_name="tasks")
