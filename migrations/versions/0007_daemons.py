"""The daemons at work on the database, each with a row it refreshes every few seconds
(docs/operating.md, Daemons).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    moment = sa.DateTime(timezone=True)
    op.create_table(
        "daemons",
        sa.Column("daemon_id", sa.String(128), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("started_at", moment, nullable=False),
        sa.Column("last_seen_at", moment, nullable=False),
        sa.Column("stopped_at", moment),
        sa.Column("providers", sa.JSON(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("polls_last_minute", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("daemon_id", name="pk_daemons"),
    )


def downgrade() -> None:
    op.drop_table("daemons")
