"""The report's figures on a real SQLite file and a real PostgreSQL database, against fixtures
computed by hand: groups, counts, failure rates, nearest-rank percentiles, groups with nothing to
time, tasks without the API's created_at; and first_running_at, written by the polls and by the
migration that brought it."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from alembic import command
from sqlalchemy import insert

from tests.report_fixture import DAY_1, DAY_2, NOW, at, fill, fixture_rows
from tracker.core.models import FetchResult
from tracker.core.report import GroupKey, ReportQuery
from tracker.core.video import Video
from tracker.daemon.poller import Policy, decide
from tracker.store import Database, migrations
from tracker.store.engine import create_engine
from tracker.store.schema import snapshots, tasks

POLICY = Policy(interval=10, give_up_after=86400, request_timeout=5)


def test_each_group_is_counted_rated_and_timed_as_computed_by_hand(database: Database) -> None:
    fill(database, fixture_rows())
    rows = [row.as_dict() for row in database.reports.report(ReportQuery.of(NOW, by="model"))]
    assert rows == [
        {
            "model": "sora-2",
            "tasks": 6,
            "unfinished": 2,
            "completed": 3,
            "failed": 1,
            "not_found": 0,
            "timed_out": 0,
            "removed": 0,
            "failure_rate": 0.25,
            # [100, 200, 300]: ranks ceil(1.5) = 2, ceil(2.7) = 3, ceil(2.97) = 3
            "p50_seconds": 200.0,
            "p90_seconds": 300.0,
            "p99_seconds": 300.0,
            # [10, 20, 30, 40, 50] (the failed and the unfinished task count; a6 never ran)
            "queue_p50_seconds": 30.0,
            "polls_per_task": 4.17,  # 25 / 6
        },
        {
            "model": "sora-2-pro",
            "tasks": 13,
            "unfinished": 0,
            "completed": 10,
            "failed": 0,
            "not_found": 1,
            "timed_out": 1,
            "removed": 1,
            "failure_rate": 0.0,
            "p50_seconds": 50.0,  # rank 5 of 10
            "p90_seconds": 90.0,  # rank 9
            "p99_seconds": 100.0,  # rank ceil(9.9) = 10
            "queue_p50_seconds": None,  # none was seen running
            "polls_per_task": 2.0,
        },
        {
            # Nothing finished, nothing timed: no rate, no percentile.
            "model": None,
            "tasks": 1,
            "unfinished": 1,
            "completed": 0,
            "failed": 0,
            "not_found": 0,
            "timed_out": 0,
            "removed": 0,
            "failure_rate": None,
            "p50_seconds": None,
            "p90_seconds": None,
            "p99_seconds": None,
            "queue_p50_seconds": None,
            "polls_per_task": 2.0,
        },
    ]


def test_without_keys_one_row_holds_the_whole_window(database: Database) -> None:
    fill(database, fixture_rows())
    [row] = database.reports.report(ReportQuery.of(NOW))
    assert row.keys == {}
    assert (row.tasks, row.completed, row.failed, row.unfinished) == (20, 13, 1, 3)
    # [10 … 100, 100, 200, 300]: rank 7 of 13 is 70 s, rank 12 is 200 s, rank 13 is 300 s
    assert (row.p50_seconds, row.p90_seconds, row.p99_seconds) == (70.0, 200.0, 300.0)
    assert row.failure_rate == round(1 / 14, 4)


def test_rows_by_day_hour_and_several_keys_name_each_key(database: Database) -> None:
    fill(database, fixture_rows())
    by_day = database.reports.report(ReportQuery.of(NOW, by="day"))
    assert [(row.keys, row.tasks) for row in by_day] == [
        ({"day": "2026-12-04"}, 15),
        ({"day": "2026-12-05"}, 5),
    ]
    by_hour = database.reports.report(ReportQuery.of(NOW, by="hour,model"))
    assert [(row.keys, row.tasks) for row in by_hour] == [
        ({"hour": "2026-12-04T09:00:00Z", "model": "sora-2"}, 2),
        ({"hour": "2026-12-04T09:00:00Z", "model": "sora-2-pro"}, 13),
        ({"hour": "2026-12-05T17:00:00Z", "model": "sora-2"}, 4),
        ({"hour": "2026-12-05T17:00:00Z", "model": None}, 1),
    ]
    by_size = database.reports.report(
        ReportQuery.of(NOW, by=[GroupKey.PROVIDER, GroupKey.SIZE, GroupKey.SECONDS])
    )
    assert [(row.keys, row.tasks) for row in by_size] == [
        ({"provider": "default", "size": "1280x720", "seconds": "8"}, 6),
        ({"provider": "default", "size": None, "seconds": None}, 14),
    ]


def test_the_window_takes_since_and_leaves_out_until(database: Database) -> None:
    fill(database, fixture_rows())
    day_1 = ReportQuery.of(NOW, since=DAY_1, until=DAY_2)
    assert [row.tasks for row in database.reports.report(day_1)] == [15]
    until_a_registration = ReportQuery.of(NOW, since=DAY_1 + timedelta(microseconds=1))
    assert [row.tasks for row in database.reports.report(until_a_registration)] == [5]
    everything = ReportQuery.of(NOW, since=NOW - timedelta(days=30), by="model")
    assert [row.tasks for row in database.reports.report(everything)] == [7, 13, 1]
    nothing = ReportQuery.of(NOW, since=NOW - timedelta(hours=1))
    assert database.reports.report(nothing) == []


def record(database: Database, task_id: str, moment: datetime, video: Video) -> None:
    [claimed] = database.polls.claim_due("d", moment, moment + timedelta(minutes=1), 1)
    fetch = FetchResult(200, 1, None, video, None)
    database.polls.record_polls("d", [decide(claimed, fetch, moment, POLICY, random.Random(1))])


def test_the_first_poll_that_sees_the_video_made_is_kept(database: Database) -> None:
    """first_running_at is the first poll with a running status: not a queued one before it,
    not the running ones after it, not the completion."""
    database.tasks.add_tasks(["v"], None, DAY_1)
    moments = [at(DAY_1, 15 * n) for n in range(5)]
    statuses = ["queued", "pending", "in_progress", "IN_PROGRESS", "completed"]
    seen = []
    for moment, status in zip(moments, statuses, strict=True):
        record(database, "v", moment, Video(status, created_at=at(DAY_1, -3)))
        seen.append(database.reads.task("v").first_running_at)  # type: ignore[union-attr]
    assert seen == [None, None, moments[2], moments[2], moments[2]]
    [row] = database.reports.report(ReportQuery.of(NOW))
    assert (row.queue_p50_seconds, row.p50_seconds) == (33.0, 63.0)


def test_the_migration_reads_first_running_at_from_the_snapshots(database_url: str) -> None:
    """Tasks polled before revision 0007 get the time of their first running snapshot."""
    engine = create_engine(database_url)
    config = migrations.alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006")
    history = {
        "ran": ["queued", " Pending", "processing", "in_progress", "completed"],
        "queued-only": ["queued", "queued"],
        "failed-at-once": ["failed"],
    }
    with engine.begin() as connection:
        for task_id, statuses in history.items():
            connection.execute(
                insert(tasks).values(
                    task_id=task_id,
                    registered_at=DAY_1,
                    next_poll_at=DAY_1,
                    poll_count=len(statuses),
                )
            )
            for n, status in enumerate(statuses):
                connection.execute(
                    insert(snapshots).values(
                        task_id=task_id, polled_at=at(DAY_1, 10 * n), status=status
                    )
                )
        connection.execute(
            insert(tasks).values(task_id="never-polled", registered_at=DAY_1, next_poll_at=DAY_1)
        )
    migrations.upgrade(engine)
    database = Database(engine)
    first = {task.task_id: task.first_running_at for task in database.reads.tasks()}
    engine.dispose()
    assert first == {
        "ran": at(DAY_1, 20),
        "queued-only": None,
        "failed-at-once": None,
        "never-polled": None,
    }
