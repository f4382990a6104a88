"""Counts kept as they change, for what is too big to count on every read: finished tasks by
finish reason, settled downloads and notifications by state (the metrics read them on every
scrape: docs/operating.md).

A transaction that changes one of them adds a row of deltas (``tally``) rather than updating a
counter row: daemons finishing tasks at once never wait for each other on one hot row. A read
adds the rows up; a periodic job folds them into one row per count (``Tallies.fold``), so they
stay few. Migration 0008 counted what was there before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Literal

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from tracker.store.base import SQLStore
from tracker.store.schema import tallies

TallyKind = Literal["finished", "downloads", "notifications"]


def tally(connection: Connection, kind: TallyKind, deltas: Mapping[str, int]) -> None:
    """Within a transaction that changes them: these counts of ``kind`` move by ``deltas``."""
    rows = [{"kind": kind, "key": key, "delta": delta} for key, delta in deltas.items() if delta]
    if rows:
        connection.execute(tallies.insert(), rows)


def tallied(connection: Connection) -> dict[TallyKind, dict[str, int]]:
    """Every count, by kind and key (within the caller's read)."""
    query = select(tallies.c.kind, tallies.c.key, func.sum(tallies.c.delta)).group_by(
        tallies.c.kind, tallies.c.key
    )
    counts: dict[TallyKind, dict[str, int]] = {"finished": {}, "downloads": {}, "notifications": {}}
    for kind, key, total in connection.execute(query):
        if total:
            counts[kind][key] = int(total)
    return counts


class Tallies(SQLStore):
    def fold(self) -> None:
        """One row per count: those written meanwhile by others are left for the next fold."""
        with self._writing() as connection:
            folded: Counter[tuple[str, str]] = Counter()
            taken = connection.execute(
                delete(tallies).returning(tallies.c.kind, tallies.c.key, tallies.c.delta)
            )
            for kind, key, delta in taken:
                folded[(kind, key)] += delta
            rows = [
                {"kind": kind, "key": key, "delta": total}
                for (kind, key), total in folded.items()
                if total
            ]
            if rows:
                connection.execute(tallies.insert(), rows)
