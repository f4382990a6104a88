"""The counts the dashboard shows (tasks by state, the backlog, polls in the last minute), read
in the background and shared by every page and browser.

``Reads.stats`` aggregates the whole tasks table: a millisecond on a small database, over a
second with a million tasks on SQLite (docs/performance.md, The dashboard). So the pages never
wait for it: a read older than its freshness is still served while a new one runs in a thread
of its own, and a read is fresh for ``FRESH_SECONDS``, or ten times as long as the last one
took, whichever is longer, so that however big the table, an open dashboard keeps the
database busy a tenth of the time at most. ``/v1/stats`` is not cached: it reads when asked.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from tracker.core.clock import Clock
from tracker.core.models import FinishReason, Stats
from tracker.errors import TrackerError
from tracker.store.engine import reported_errors
from tracker.store.reads import Reads

logger = logging.getLogger(__name__)

FRESH_SECONDS = 3.0
COST_FACTOR = 10
# A wait shorter than this that runs out marks the read as slow (the page's wait, not the
# script's, which waits for the counts as long as they take).
SLOW_WAIT = 1.0
STATES = ("unfinished", *(reason.value for reason in FinishReason))


@dataclass(frozen=True)
class Counts:
    """One read of the counts, and how old it is."""

    stats: Stats
    read_seconds: float  # what the read cost
    age_seconds: float

    @property
    def by_state(self) -> dict[str, int]:
        counts = {"unfinished": self.stats.unfinished}
        counts.update({state: self.stats.finished.get(state, 0) for state in STATES[1:]})
        return counts

    @property
    def total(self) -> int:
        return self.stats.unfinished + sum(self.stats.finished.values())

    @property
    def polls_per_second(self) -> float:
        """Snapshots written in the last minute, a second's worth: every poll writes one,
        unless the daemons record changes only (docs/cli.md, --record)."""
        return self.stats.snapshots_last_minute / 60


class Summary:
    def __init__(self, reads: Reads, clock: Clock) -> None:
        self._reads = reads
        self._clock = clock
        self._lock = threading.Lock()
        self._read = threading.Condition(self._lock)
        self._latest: tuple[Stats, float, float] | None = None  # stats, read at, cost
        self._failed = False
        self._reading = False
        self._slow = False  # a short wait for the read under way ran out

    def counts(self, wait: float) -> Counts | None:
        """The latest counts, a read started if they are stale; waits up to ``wait`` seconds
        for a read under way when there are none yet. None when there are none in time, or
        the last read failed (``failed`` says which)."""
        deadline = time.monotonic() + wait
        with self._lock:
            if self._stale():
                self._start()
            while self._latest is None and self._reading and not self._slow:
                left = deadline - time.monotonic()
                if left <= 0 or not self._read.wait(left):
                    # This read is slow: nobody else waits for it; pages go without.
                    self._slow = wait < SLOW_WAIT
                    break
            if self._latest is None or self._failed:
                return None
            stats, at, cost = self._latest
            return Counts(stats, cost, time.monotonic() - at)

    @property
    def failed(self) -> bool:
        """Whether the last read failed (the database is away)."""
        with self._lock:
            return self._failed

    def _stale(self) -> bool:
        if self._latest is None or self._failed:
            return True
        _, at, cost = self._latest
        return time.monotonic() - at > max(FRESH_SECONDS, COST_FACTOR * cost)

    def _start(self) -> None:
        if self._reading:
            return
        self._reading, self._slow = True, False
        threading.Thread(target=self._refresh, name="tracker-summary", daemon=True).start()

    def _refresh(self) -> None:
        started = time.monotonic()
        try:
            with reported_errors():
                stats = self._reads.stats(self._clock.now())
        except TrackerError as exc:
            logger.warning("reading the dashboard's counts failed: %s", exc)
            with self._lock:
                self._failed, self._reading = True, False
                self._read.notify_all()
            return
        finished = time.monotonic()
        with self._lock:
            self._latest = (stats, finished, finished - started)
            self._failed, self._reading = False, False
            self._read.notify_all()
