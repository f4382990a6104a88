"""The daemons at work on a database: each keeps a row of its own, refreshed every beat, so
that every command and page can say who polls, since when, and who was lost (docs/operating.md,
Daemons)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

BEAT_SECONDS = 5.0
# A daemon not seen for this many beats is shown as lost (killed, its machine or network gone).
LOST_AFTER_BEATS = 3
# Rows of daemons stopped or lost this long ago are forgotten.
FORGOTTEN_AFTER = timedelta(days=1)

DaemonState = Literal["running", "lost", "stopped"]


@dataclass(frozen=True)
class DaemonRow:
    """One row of ``daemons``; field names are the column names (docs/tables.md)."""

    daemon_id: str  # what its leases name as their owner
    host: str
    pid: int
    version: str
    started_at: datetime
    last_seen_at: datetime
    stopped_at: datetime | None
    providers: list[str]
    held: int  # tasks it holds the lease of, at its last beat
    polls_last_minute: int

    def state(self, now: datetime) -> DaemonState:
        if self.stopped_at is not None:
            return "stopped"
        if now - self.last_seen_at > timedelta(seconds=BEAT_SECONDS * LOST_AFTER_BEATS):
            return "lost"
        return "running"
