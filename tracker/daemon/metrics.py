"""Prometheus metrics and a health check: `tracker run --metrics-port PORT`.

``GET /metrics`` answers the Prometheus text format; ``GET /healthz`` answers 200 while the
scheduler ticks and the database answers, 503 otherwise. The counters and histograms are fed
by the poller as it works (it only calls the Observer methods below); the gauges of tasks and
backlog are read from the database every few seconds, so they count every daemon's work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from tracker.core.clock import Clock
from tracker.core.models import DOWNLOAD_STATES, EVENT_STATES, FinishReason, PollRecord, Stats
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.rules import PollOutcome
from tracker.http.server import Answer, Request, error_body, serve_connection

if TYPE_CHECKING:
    from tracker.daemon.poller import Poller
    from tracker.store.reads import Reads

logger = logging.getLogger(__name__)

# Without a tick for this long the daemon is not polling: unhealthy.
STALE_TICK_SECONDS = 10.0


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
            "Seconds until the API may be asked again after a 429, 401 or 403.",
            registry=registry,
        )
        self.auth_failures = Gauge(
            "tracker_api_auth_failures", "Consecutive refusals of the token.", registry=registry
        )
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

    def refresh(
        self,
        stats: Stats,
        paused_until: datetime | None,
        auth_failures: int,
        database_up: bool,
    ) -> None:
        self.tasks.labels("unfinished").set(stats.unfinished)
        # Every known label, zero when absent: a count that drops to nothing must read 0, not
        # keep its last value.
        for reason in FinishReason:
            self.tasks.labels(reason.value).set(stats.finished.get(reason.value, 0))
        self.due.set(stats.due)
        self.oldest.set(
            (stats.at - stats.oldest_unfinished).total_seconds() if stats.oldest_unfinished else 0
        )
        for kind, counts, states in (
            ("download", stats.downloads, DOWNLOAD_STATES),
            ("notification", stats.notifications, EVENT_STATES),
        ):
            for state in states:
                self.follow_ups.labels(kind, state).set(counts.get(state, 0))
        self.paused.set(max(0.0, (paused_until - stats.at).total_seconds()) if paused_until else 0)
        self.auth_failures.set(auth_failures)
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


class GaugeRefresher:
    """Reads the gauges from the database every few seconds (a worker of the scheduler)."""

    def __init__(
        self,
        metrics: Metrics,
        poller: Poller,
        reads: Reads,
        database: DatabaseThread,
        clock: Clock,
        every: float = 5.0,
    ) -> None:
        self._metrics = metrics
        self._poller = poller
        self._reads = reads
        self._database = database
        self._clock = clock
        self._every = every
        self._next = 0.0
        self._answered = True

    @property
    def busy(self) -> bool:
        return False

    def database_up(self) -> bool:
        return self._answered and self._poller.health.down_since is None

    async def tick(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._every
        try:
            stats = await self._database.run(self._reads.stats, self._clock.now())
        except Exception as exc:
            if self._answered:
                logger.warning("reading the metrics' counts failed: %s", exc)
            self._answered = False
            self._metrics.database_up.set(0)
            return
        self._answered = True
        self._metrics.refresh(
            stats, self._poller.pause.until, self._poller.pause.auth_failures, self.database_up()
        )

    async def drain(self, timeout: float) -> None:
        pass


class MetricsServer:
    """Serves /metrics and /healthz from the daemon's event loop."""

    def __init__(self, metrics: Metrics, database_up: Callable[[], bool]) -> None:
        self._metrics = metrics
        self._database_up = database_up
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._connection, host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        logger.info("metrics on http://%s:%d/metrics, health on /healthz", host, bound)
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(reader, writer, self._handle, max_body=0, request_timeout=10.0)

    async def _handle(self, request: Request) -> Answer:
        path = request.target.split("?", 1)[0]
        if request.method != "GET":
            return 405, {"Allow": "GET"}, error_body("GET only.", "invalid_request")
        if path == "/metrics":
            return (
                200,
                {"Content-Type": CONTENT_TYPE_LATEST},
                generate_latest(self._metrics.registry),
            )
        if path == "/healthz":
            healthy, detail = self._metrics.healthy(self._database_up())
            detail["status"] = "ok" if healthy else "unhealthy"
            return (200 if healthy else 503), {}, json.dumps(detail).encode()
        return 404, {}, error_body(f"No {path} here: /metrics or /healthz.", "invalid_request")
