"""What the Insights page reads beside the report, on SQLite and PostgreSQL: finishes by the hour
they happened, and the most frequent reasons failed tasks failed for (their last snapshot's
error), against the report's fixture; and the report's groups added up into coarser ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import insert

from tests.report_fixture import DAY_1, DAY_2, NOW, at, fill, fixture_rows, task
from tracker.core.report import FailureReason, HourFinishes, ReportQuery, rollup
from tracker.store import Database
from tracker.store.schema import snapshots


def test_finishes_are_counted_by_the_hour_they_happened(database: Database) -> None:
    fill(database, fixture_rows())
    hours = database.insights.finishes_by_hour(ReportQuery.of(NOW))
    assert hours == [
        # a1, a2 and the ten sora-2-pro tasks (the last at 09:31:50)
        HourFinishes(datetime(2026, 12, 4, 9, tzinfo=UTC), 12, 0),
        # a3 completed at 17:15, a4 failed at 17:11:30
        HourFinishes(datetime(2026, 12, 5, 17, tzinfo=UTC), 1, 1),
    ]


def test_the_most_frequent_failure_reasons_come_first(database: Database) -> None:
    errors = [
        {"code": "moderation_blocked", "message": "Your request was blocked."},
        {"code": "moderation_blocked", "message": "Your request was blocked."},
        {"code": "moderation_blocked", "message": "Your request was blocked."},
        {"code": "internal_error", "message": "The video could not be made."},
        {"code": "internal_error", "message": "The video could not be made."},
        {"code": 500, "message": "relay failure"},
        None,
    ]
    rows = [
        task(f"f{n}", DAY_2, finish_reason="failed", finished_at=at(DAY_2, 60))
        for n in range(len(errors))
    ]
    rows.append(task("f-old", NOW - timedelta(days=9), finish_reason="failed"))
    rows.append(task("done", DAY_2, finish_reason="completed", finished_at=at(DAY_2, 60)))
    fill(database, rows)
    with database.engine.begin() as connection:
        for n, error in enumerate(errors):
            # An earlier answer with another error, then the one the task failed with.
            for seconds, said in ((30, {"code": "earlier", "message": "not this"}), (60, error)):
                connection.execute(
                    insert(snapshots).values(
                        task_id=f"f{n}", polled_at=at(DAY_2, seconds), status="failed", error=said
                    )
                )
        for task_id in ("f-old", "done"):
            connection.execute(
                insert(snapshots).values(
                    task_id=task_id, polled_at=DAY_1, error={"code": "elsewhere", "message": "x"}
                )
            )
    reasons = database.insights.failure_reasons(ReportQuery.of(NOW))
    assert reasons[:2] == [
        FailureReason("moderation_blocked", "Your request was blocked.", 3),
        FailureReason("internal_error", "The video could not be made.", 2),
    ]
    assert sorted(reasons[2:], key=repr) == sorted(
        [FailureReason("500", "relay failure", 1), FailureReason(None, None, 1)], key=repr
    )
    assert database.insights.failure_reasons(ReportQuery.of(NOW), limit=1) == reasons[:1]


def test_groups_read_finely_add_up_to_the_coarser_reports(database: Database) -> None:
    """Rolled up from groups by day, model and size, the rows by model and the one row of all
    are those the report gives by itself; a histogram counts each model's durations between
    edges."""
    fill(database, fixture_rows())
    fine = database.reports.groups(ReportQuery.of(NOW, by="day,model,size"))
    assert len(fine) == 4
    for keys in (["model"], [], ["day"]):
        expected = database.reports.report(ReportQuery.of(NOW, by=",".join(keys)))
        assert [group.row() for group in rollup(fine, keys)] == expected
    models = rollup(fine, ["model"])
    edges = [30_000, 100_000, 250_000]  # 30 s, 100 s, 250 s
    assert [(group.keys["model"], group.histogram(edges)) for group in models] == [
        ("sora-2", (0, 0, 2, 1)),  # 100 s is not under 100 s; 200 s; 300 s
        ("sora-2-pro", (2, 7, 1, 0)),  # 10, 20 | 30 … 90 | 100
        (None, (0, 0, 0, 0)),
    ]
