"""Snapshots on PostgreSQL kept apart from the rest and the rest a partition a day (migration
0009): each snapshot lands where it belongs, a day made late takes its rows from the default
partition, retention drops whole days and keeps what it promised, and the migration converts a
database that had snapshots before it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from tracker.core.clock import SystemClock
from tracker.core.models import FetchResult
from tracker.core.video import Video
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.retention import Retention
from tracker.daemon.rules import Policy, decide
from tracker.daemon.running import Crew
from tracker.store import Database, migrations
from tracker.store.engine import create_engine
from tracker.store.partitions import day_start
from tracker.store.schema import snapshots, tasks

pytestmark = pytest.mark.postgres
POLICY = Policy(interval=10.0, give_up_after=86400.0 * 30, request_timeout=5.0)
NOW = datetime.now(UTC)


@pytest.fixture
def database(postgres_url: str) -> Iterator[Database]:
    database = Database.open(postgres_url)
    yield database
    database.close()


def where(database: Database) -> dict[int, str]:
    """Each snapshot's partition, by ID."""
    query = text("SELECT id, tableoid::regclass::text FROM snapshots")
    with database.engine.connect() as connection:
        return {int(id_): str(table) for id_, table in connection.execute(query)}


def poll(database: Database, task_id: str, status: str, at: datetime) -> None:
    [task] = [
        t
        for t in database.polls.claim_due(
            "d", at, at + timedelta(minutes=1), 100, include_not_due=True
        )
        if t.task_id == task_id
    ]
    finished = status == "completed"
    video = Video(status, 100 if finished else 50)
    record = decide(task, FetchResult(200, 1.0, "{}", video, None), at, POLICY, random.Random(1))
    database.polls.record_polls("d", [record])


def test_snapshots_land_in_their_partition_and_retention_drops_days(database: Database) -> None:
    database.tasks.add_tasks(["t"], None, NOW - timedelta(days=3))
    days = [NOW - timedelta(days=n) for n in (3, 3, 2, 2, 0)]
    statuses = ["queued", "queued", "queued", "in_progress", "in_progress"]
    for at, status in zip(days, statuses, strict=True):
        poll(database, "t", status, at)
    history = database.reads.history("t")
    placed = where(database)
    kept = [s.id for s in history if placed[s.id] == "snapshots_kept"]
    # The first, and each new status, are kept; the repetitions go by day.
    assert kept == [history[0].id, history[3].id]
    assert placed[history[1].id] == "snapshots_polls_default"  # no partition made that far back
    assert placed[history[4].id] == f"snapshots_polls_{day_start(NOW):%Y%m%d}"
    made = database.partitions.make_days_ahead(NOW - timedelta(days=3), days=1)
    assert made == [f"snapshots_polls_{day_start(NOW - timedelta(days=n)):%Y%m%d}" for n in (3, 2)]
    assert where(database)[history[1].id] == made[0]  # moved out of the default
    assert where(database)[history[2].id] == made[1]
    pruned = database.retention.prune_batch(NOW - timedelta(days=1), None, 1000, False)
    assert pruned[1] is None
    left = [s.id for s in database.reads.history("t")]
    assert left == [history[0].id, history[3].id, history[4].id]
    assert made[0] not in {day.table for day in database.partitions.days()}


def test_the_migration_converts_what_was_there(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    migrations.upgrade(engine, "0008")
    with engine.begin() as connection:
        connection.execute(
            insert(tasks),
            [
                {"task_id": task_id, "registered_at": NOW, "next_poll_at": NOW, "finished": done}
                for task_id, done in (("a", True), ("b", False))
            ],
        )
        rows = [
            ("a", "queued", False, 5),
            ("a", "queued", False, 4),
            ("a", "running", False, 3),
            ("a", "running", False, 2),
            ("a", "completed", True, 1),
            ("b", "queued", False, 2),
            ("b", "queued", False, 0),
        ]
        connection.execute(
            insert(snapshots),
            [
                {"task_id": t, "status": s, "finished": f, "polled_at": NOW - timedelta(days=d)}
                for t, s, f, d in rows
            ],
        )
        before = [
            tuple(row) for row in connection.execute(select(snapshots.c.id, snapshots.c.status))
        ]
    migrations.upgrade(engine)
    database = Database(engine)
    try:
        with engine.connect() as connection:
            after = connection.execute(
                select(snapshots.c.id, snapshots.c.status, snapshots.c.kept).order_by(
                    snapshots.c.id
                )
            ).all()
        assert [(id_, status) for id_, status, _kept in after] == sorted(before)
        kept = [status for _id, status, is_kept in after if is_kept]
        # a: first, new status, last (finished); b: first, last.
        assert kept == ["queued", "running", "completed", "queued", "queued"]
        placed = set(where(database).values())
        assert placed == {
            "snapshots_kept",
            f"snapshots_polls_before_{day_start(NOW):%Y%m%d}",
        }
        database.tasks.add_tasks(["c"], None, NOW)
        poll(database, "c", "queued", NOW)
        assert max(where(database)) > max(id_ for id_, _s in before)  # the sequence goes on
    finally:
        database.close()


def test_a_drop_gives_way_to_a_long_read_and_comes_back_for_the_day(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    database.tasks.add_tasks(["t"], None, NOW - timedelta(days=3))
    [made] = database.partitions.make_days_ahead(NOW - timedelta(days=3), days=0)
    for status in ("queued", "queued", "queued"):
        poll(database, "t", status, NOW - timedelta(days=3))
    with database.engine.connect() as reader, reader.begin():
        reader.execute(text("SELECT COUNT(*) FROM snapshots")).scalar()
        # The drop waits its turn behind the read, briefly: the polls queued behind it go on.
        assert database.retention.prune_batch(NOW - timedelta(days=1), None, 100, False) == (
            0,
            None,
        )
        poll(database, "t", "queued", NOW)
    assert made in {day.table for day in database.partitions.days()}
    assert f"the snapshots of a day ({made}) were left for the next prune" in caplog.text
    assert database.retention.prune_batch(NOW - timedelta(days=1), None, 100, False) == (2, None)
    assert made not in {day.table for day in database.partitions.days()}


def test_the_daemon_prunes_hourly_where_it_drops_days(database: Database, tmp_path: Path) -> None:
    thread = DatabaseThread()
    crew = Crew("test-daemon", thread, SystemClock(), database.wakeups)
    sqlite = Database.open(f"sqlite:///{tmp_path / 'tracker.db'}")
    try:
        assert Retention(database.retention, 86400, crew).every == 3600
        assert Retention(sqlite.retention, 86400, crew).every == 86400
    finally:
        sqlite.close()
        thread.close()
