"""Counts kept as they change (tracker/store/tallies.py): finished tasks by finish reason,
settled downloads and notifications by state, counted once here from what is there, then
moved by the transactions that change them, so the metrics need not count a million rows on
every scrape.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tallies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(32), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tallies"),
    )
    op.execute(
        "INSERT INTO tallies (kind, key, delta) "
        "SELECT 'finished', finish_reason, COUNT(*) FROM tasks "
        "WHERE finished AND finish_reason IS NOT NULL GROUP BY finish_reason"
    )
    for kind, table in (("downloads", "downloads"), ("notifications", "outbox")):
        op.execute(
            f"INSERT INTO tallies (kind, key, delta) SELECT '{kind}', state, COUNT(*) "
            f"FROM {table} WHERE state <> 'pending' GROUP BY state"
        )


def downgrade() -> None:
    op.drop_table("tallies")
