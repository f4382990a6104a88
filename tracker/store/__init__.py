"""Storage: every SQL statement tracker runs, on SQLite or PostgreSQL.

Owns the engine (``engine``), what every store shares (``base``), the tables (``schema``, their
times as SQLite's text in ``timetext``), the way to the newest migration (``migrations``) and the
stores built on them, each one concern: ``tasks`` (registering, removing), ``actions`` (polling
now, reopening, acting on many at once), ``polls`` (claims and the writes of polls, through
``batch``, by statements compiled once for many rows in ``bulk``), ``leases``, ``follow_ups``
(downloads and the outbox), ``reads`` (lists, history, counts, exports; the orders of lists in
``ordering``), ``report`` (the report: tasks grouped, counted and timed) and ``insights`` (what the
Insights page draws beside it), ``feed`` (the event feed, in commit order), ``wakeups`` (who waits
on which writes: NOTIFY, the LISTEN connection, in-process signals), ``timeline`` (a task's course,
for the dashboard), ``daemons`` (the daemons at work, a row each), ``tallies`` (counts kept as they
change), ``prune`` (retention, with ``partitions``, the days of snapshots on PostgreSQL) and
``sandbox`` (read-only SQL for ``tracker sql``, cut into statements by ``statements``).
``Database`` (in ``database``) holds one of each on an engine. Methods are synchronous: the daemon
calls them on its database thread, never on the event loop; only the wakeups' listening and waiting
are the loop's.

May import ``tracker.core`` and ``tracker.errors``; nothing above it (http, daemon, web, cli).
"""

from tracker.store.database import Database
from tracker.store.sandbox import QueryResult

__all__ = ["Database", "QueryResult"]
