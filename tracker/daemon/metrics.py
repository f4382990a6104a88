"""What ``/metrics`` and ``/healthz`` answer (docs/operating.md, Metrics and health).

The counters and histograms are fed by the poller as it works (it only calls the Observer
methods below); the gauges of tasks and backlog are read from the database when scraped, at
most every few seconds, so they count every daemon's work. ``/healthz`` is 200 while the
scheduler ticks (in a daemon) and the database answers, 503 otherwise.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from tracker.core.clock import Clock
from tracker.core.follow_ups import DOWNLOAD_STATES, EVENT_STATES
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import FinishReason, Gauges, PollRecord
from tracker.daemon.rules import PollOutcome

if TYPE_CHECKING:
    from tracker.daemon.lanes import Lanes
    from tracker.store.reads import Reads

logger = logging.getLogger(__name__)

# Without a tick for this long the daemon is not polling: unhealthy.
STALE_TICK_SECONDS = 10.0
# The gauges read from the database are this fresh at most (a scrape every few seconds is cheap).
GAUGE_SECONDS = 2.0


class Metrics:
    """The daemon's metrics on a registry of their own; an Observer for the poller."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.polls = Counter(
            "tracker_polls", "Polls made, by outcome.", ["outcome"], registry=registry
        )
        self.latency = Histogram(
            "tracker_poll_latency_seconds",
            "Time from sending a poll to its whole answer.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.lateness = Histogram(
            "tracker_poll_lateness_seconds",
            "How long after it was due a task was polled.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
            registry=registry,
        )
        self.writes = Histogram(
            "tracker_database_write_seconds",
            "Time to write one tick's poll results.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
            registry=registry,
        )
        self.tasks = Gauge(
            "tracker_tasks",
            "Tasks by state (unfinished or finish reason).",
            ["state"],
            registry=registry,
        )
        self.due = Gauge(
            "tracker_due_backlog",
            "Unfinished tasks due now that no daemon has claimed yet.",
            registry=registry,
        )
        self.oldest = Gauge(
            "tracker_oldest_unfinished_age_seconds",
            "Age of the oldest unfinished task.",
            registry=registry,
        )
        self.follow_ups = Gauge(
            "tracker_follow_ups",
            "Downloads and notifications by kind and state.",
            ["kind", "state"],
            registry=registry,
        )
        self.paused = Gauge(
            "tracker_api_paused_seconds",
            "Seconds until a provider's API may be asked again after a 429, 401 or 403.",
            ["provider"],
            registry=registry,
        )
        self.auth_failures = Gauge(
            "tracker_api_auth_failures",
            "Consecutive refusals of a provider's token.",
            ["provider"],
            registry=registry,
        )
        self.by_provider = Gauge(
            "tracker_provider_unfinished_tasks",
            "Unfinished tasks by provider.",
            ["provider"],
            registry=registry,
        )
        # Every provider seen: one that drops out must read 0, not keep its last value.
        self._providers = {DEFAULT_PROVIDER}
        self.database_up = Gauge(
            "tracker_database_up", "1 while the database answers.", registry=registry
        )
        self.last_tick = Gauge(
            "tracker_last_tick_timestamp_seconds",
            "When the scheduler last ran the polling tick.",
            registry=registry,
        )
        self.last_tick_monotonic = 0.0

    # Observer: called by the poller on the event loop; cheap and never blocking.

    def polled(self, record: PollRecord, lateness: float) -> None:
        self.polls.labels(PollOutcome.of(record).value).inc()
        self.latency.observe(record.fetch.latency_ms / 1000)
        self.lateness.observe(max(0.0, lateness))

    def wrote(self, seconds: float) -> None:
        self.writes.observe(seconds)

    def ticked(self) -> None:
        self.last_tick.set(time.time())
        self.last_tick_monotonic = time.monotonic()

    # Gauges

    def refresh(self, gauges: Gauges, database_up: bool) -> None:
        self.tasks.labels("unfinished").set(gauges.unfinished)
        # Every known label, zero when absent: a count that drops to nothing must read 0, not
        # keep its last value.
        for reason in FinishReason:
            self.tasks.labels(reason.value).set(gauges.finished.get(reason.value, 0))
        self.due.set(gauges.due)
        self.oldest.set(
            (gauges.at - gauges.oldest_unfinished).total_seconds()
            if gauges.oldest_unfinished
            else 0
        )
        for kind, counts, states in (
            ("download", gauges.downloads, DOWNLOAD_STATES),
            ("notification", gauges.notifications, EVENT_STATES),
        ):
            for state in states:
                self.follow_ups.labels(kind, state).set(counts.get(state, 0))
        pauses = {pause.provider: pause for pause in gauges.paused}
        self._providers |= set(pauses) | set(gauges.unfinished_by_provider)
        for provider in self._providers:
            pause = pauses.get(provider)
            left = (pause.paused_until - gauges.at).total_seconds() if pause else 0.0
            self.paused.labels(provider).set(max(0.0, left))
            self.auth_failures.labels(provider).set(pause.refusals if pause else 0)
            self.by_provider.labels(provider).set(gauges.unfinished_by_provider.get(provider, 0))
        self.database_up.set(1 if database_up else 0)

    def healthy(self, database_up: bool) -> tuple[bool, dict[str, object]]:
        since_tick = time.monotonic() - self.last_tick_monotonic
        ticking = self.last_tick_monotonic > 0 and since_tick < STALE_TICK_SECONDS
        detail: dict[str, object] = {
            "scheduler": "ticking" if ticking else "stalled",
            "seconds_since_tick": round(since_tick, 3) if self.last_tick_monotonic else None,
            "database": "up" if database_up else "down",
        }
        return ticking and database_up, detail


class Probes:
    """``/metrics`` and ``/healthz`` for the app: a daemon's (with its poller) or a server's."""

    def __init__(
        self,
        metrics: Metrics,
        reads: Reads,
        clock: Clock,
        poller: Lanes | None = None,
        every: float = GAUGE_SECONDS,
    ) -> None:
        self._metrics = metrics
        self._reads = reads
        self._clock = clock
        self._poller = poller
        self._every = every
        self._read_at = 0.0
        self._answered = False
        self._reading = threading.Lock()

    def metrics(self) -> tuple[bytes, str]:
        self._refresh()
        return generate_latest(self._metrics.registry), CONTENT_TYPE_LATEST

    def health(self) -> tuple[bool, dict[str, object]]:
        self._refresh()
        database_up = self._database_up()
        if self._poller is None:
            return database_up, {"database": "up" if database_up else "down"}
        return self._metrics.healthy(database_up)

    def _database_up(self) -> bool:
        polling_writes = self._poller is None or self._poller.database_down_since is None
        return self._answered and polling_writes

    def _refresh(self) -> None:
        """Read the gauges again if they are older than ``every``; one reader at a time."""
        with self._reading:
            if time.monotonic() - self._read_at < self._every:
                return
            self._read_at = time.monotonic()
            try:
                gauges = self._reads.gauges(self._clock.now())
            except Exception as exc:
                if self._answered:
                    logger.warning("reading the metrics' counts failed: %s", exc)
                self._answered = False
                self._metrics.database_up.set(0)
                return
            self._answered = True
            self._metrics.refresh(gauges, self._database_up())
