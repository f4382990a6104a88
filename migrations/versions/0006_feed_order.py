"""The writing transaction of each snapshot, so that the event feed reads snapshots in the order
their transactions commit, late ones included (tracker/core/feed.py); indexed on PostgreSQL.

Existing rows get transaction 0 without a rewrite of the table; the default for new rows is
set apart, as PostgreSQL applies a changed default only to rows inserted afterwards.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "snapshots", sa.Column("xid", sa.BigInteger(), nullable=False, server_default="0")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "snapshots",
            "xid",
            server_default=sa.text("(pg_current_xact_id()::text::bigint)"),
        )
        op.create_index("ix_snapshots_xid_id", "snapshots", ["xid", "id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_snapshots_xid_id", table_name="snapshots")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("xid")
