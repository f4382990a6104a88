"""The rows of ``daemons``: each daemon's own, written by its beats (tracker/core/daemons.py)."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime

from sqlalchemy import delete, or_, select, update

from tracker.core.daemons import DaemonRow
from tracker.store.base import SQLStore
from tracker.store.schema import daemons

_COLUMNS = [daemons.c[field.name] for field in fields(DaemonRow)]
_BEATING = ("last_seen_at", "held", "polls_last_minute")


class DaemonStore(SQLStore):
    def beat(self, row: DaemonRow) -> None:
        """Write the daemon's row: refreshed at every beat, made at the first. An idle daemon
        sends this every beat, so a beat is one statement."""
        with self._writing() as connection:
            refreshed = connection.execute(
                update(daemons)
                .where(daemons.c.daemon_id == row.daemon_id)
                .values({name: getattr(row, name) for name in _BEATING})
                .execution_options(preserve_rowcount=True)
            ).rowcount
            if refreshed == 0:
                connection.execute(
                    self._insert_ignoring_existing(daemons, ["daemon_id"]), asdict(row)
                )

    def stopped(self, daemon_id: str, at: datetime) -> None:
        with self._writing() as connection:
            connection.execute(
                update(daemons)
                .where(daemons.c.daemon_id == daemon_id)
                .values(stopped_at=at, last_seen_at=at, held=0)
            )

    def forget(self, before: datetime) -> None:
        """Rows of daemons stopped, or last seen, before ``before`` go."""
        with self._writing() as connection:
            connection.execute(
                delete(daemons).where(
                    or_(daemons.c.stopped_at < before, daemons.c.last_seen_at < before)
                )
            )

    def rows(self) -> list[DaemonRow]:
        """Every daemon known, the most recently started first."""
        query = select(*_COLUMNS).order_by(daemons.c.started_at.desc(), daemons.c.daemon_id)
        with self._engine.connect() as connection:
            return [DaemonRow(*row) for row in connection.execute(query)]
