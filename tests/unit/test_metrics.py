"""The Prometheus gauges read from the database."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tracker.core.models import Gauges
from tracker.daemon.metrics import Metrics

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def stats(finished: dict[str, int], downloads: dict[str, int]) -> Gauges:
    return Gauges(
        at=NOW,
        unfinished=0,
        finished=finished,
        due=0,
        oldest_unfinished=None,
        downloads=downloads,
        notifications={},
        paused=[],
        unfinished_by_provider={},
    )


def samples(metrics: Metrics, name: str) -> dict[tuple[str, ...], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        tuple(sample.labels.values()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_a_count_that_drops_to_nothing_reads_zero() -> None:
    """Pending downloads all done: the pending gauge says 0, not its last value, so an alert
    on pending work clears; every known state and finish reason is present."""
    metrics = Metrics()
    metrics.refresh(stats({"completed": 1}, {"pending": 5}), True)
    metrics.refresh(stats({"completed": 1}, {"done": 5}), True)
    follow_ups = samples(metrics, "tracker_follow_ups")
    assert follow_ups[("download", "pending")] == 0
    assert follow_ups[("download", "done")] == 5
    assert follow_ups[("notification", "given_up")] == 0
    assert samples(metrics, "tracker_tasks")[("removed",)] == 0
