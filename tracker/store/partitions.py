"""The days of ``snapshots`` on PostgreSQL (migration 0009): the snapshots retention keeps
(``kept``) in a partition of their own, the rest in a partition a day, so that retention drops
whole days, in constant time, rather than deleting rows (docs/operating.md, Retention).

Days are made ahead (``make_days_ahead``, by every daemon as it starts and every hour); a
snapshot for a day not made yet lands in ``snapshots_polls_default``, whose rows move into
their day's partition when it is made. SQLite has no partitions: there retention deletes rows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, partial

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from tracker.store.base import SQLStore

logger = logging.getLogger(__name__)

DAYS_AHEAD = 7
# Making or dropping a partition locks the table; past this wait it gives way to the polls.
LOCK_WAIT = "200ms"
_DAY = re.compile(r"snapshots_polls_(\d{8})")
_BEFORE = re.compile(r"snapshots_polls_before_(\d{8})")


@dataclass(frozen=True)
class Day:
    """A partition of ``snapshots_polls``: its table and the end of the time it holds."""

    table: str
    ends: datetime


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class Partitions(SQLStore):
    @cached_property
    def partitioned(self) -> bool:
        """Whether snapshots are in partitions (PostgreSQL, from migration 0009 on)."""
        if self._dialect != "postgresql":
            return False
        with self._engine.connect() as connection:
            found = connection.scalar(text("SELECT to_regclass('snapshots_polls') IS NOT NULL"))
        return bool(found)

    def days(self) -> list[Day]:
        """The day partitions there are (and the one of all days before the migration)."""
        query = text(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid "
            "WHERE inhparent = 'snapshots_polls'::regclass"
        )
        with self._engine.connect() as connection:
            names = list(connection.scalars(query))
        days = []
        for name in names:
            if match := _DAY.fullmatch(name):
                begins = datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC)
                days.append(Day(name, begins + timedelta(days=1)))
            elif match := _BEFORE.fullmatch(name):
                days.append(Day(name, datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC)))
        return sorted(days, key=lambda day: day.ends)

    def make_days_ahead(self, now: datetime, days: int = DAYS_AHEAD) -> list[str]:
        """Make the partitions of today and the next ``days`` that are missing; the names
        made (a day whose locks did not come within ``LOCK_WAIT`` is made on a later try)."""
        if not self.partitioned:
            return []
        there = {day.table for day in self.days()}
        made = []
        for offset in range(days + 1):
            begins = day_start(now) + timedelta(days=offset)
            name = f"snapshots_polls_{begins:%Y%m%d}"
            if name not in there and _within_lock_wait(
                self._engine, partial(_make_day, name=name, begins=begins)
            ):
                made.append(name)
        return made

    def drop_days_before(self, cutoff: datetime, dry_run: bool = False) -> int:
        """Drop (or with ``dry_run`` only count) the day partitions wholly before ``cutoff``,
        and delete the default partition's rows before it; the snapshots gone.

        A day's rows are counted before its drop, outside the drop's transaction: dropping a
        partition locks the whole table, so it waits at most ``LOCK_WAIT`` for the reads and
        writes under way rather than stalling the polls queued behind it for as long as a
        long read lasts. A day that could not be locked is left for the next prune, and said
        in a WARNING line."""
        gone = 0
        for day in self.days():
            if day.ends > cutoff:
                continue
            with self._engine.connect() as connection:
                rows = int(connection.scalar(text(f"SELECT COUNT(*) FROM {day.table}")) or 0)
            if dry_run or _within_lock_wait(self._engine, partial(_drop_table, table=day.table)):
                gone += rows
            else:
                logger.warning(
                    "the snapshots of a day (%s) were left for the next prune: the table was busy",
                    day.table,
                )
        stray = "FROM snapshots_polls_default WHERE polled_at < :cutoff"
        with self._writing() as connection:
            if dry_run:
                found = connection.scalar(text(f"SELECT COUNT(*) {stray}"), {"cutoff": cutoff})
            else:
                found = connection.execute(text(f"DELETE {stray}"), {"cutoff": cutoff}).rowcount
        return gone + int(found or 0)


def _within_lock_wait(engine: Engine, change: Callable[[Connection], object]) -> bool:
    """Make ``change`` in a transaction of its own if the locks it needs come within
    ``LOCK_WAIT``; whether it was made."""
    from psycopg.errors import LockNotAvailable

    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
            change(connection)
    except OperationalError as exc:
        if isinstance(exc.orig, LockNotAvailable):
            return False
        raise
    return True


def _drop_table(connection: Connection, table: str) -> None:
    connection.exec_driver_sql(f"DROP TABLE {table}")


def _make_day(connection: Connection, name: str, begins: datetime) -> None:
    """The partition of the day from ``begins``, with what the default partition held of it:
    moved first, as PostgreSQL refuses a partition whose rows the default still holds."""
    ends = begins + timedelta(days=1)
    bounds = {"begins": begins, "ends": ends}
    connection.exec_driver_sql(f"CREATE TABLE {name} (LIKE snapshots_polls INCLUDING DEFAULTS)")
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM snapshots_polls_default "
            f"WHERE polled_at >= :begins AND polled_at < :ends RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    )
    connection.exec_driver_sql(
        f"ALTER TABLE snapshots_polls ATTACH PARTITION {name} "
        f"FOR VALUES FROM ('{begins.isoformat()}') TO ('{ends.isoformat()}')"
    )
