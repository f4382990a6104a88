"""Counts kept as they change (tracker/store/tallies.py), against what counting every row
says, on both databases: tasks finished by a poll, a removal and the give-up sweep, downloads
settled and done again, notifications delivered and given up; folded, they read the same; and
migration 0008 counts what was there before it."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from tracker.core.follow_ups import DownloadOutcome, EventOutcome, NewDownload
from tracker.core.models import FetchResult
from tracker.core.owed import new_events
from tracker.core.video import Video
from tracker.daemon.rules import Policy, decide
from tracker.store import Database, migrations
from tracker.store.engine import create_engine
from tracker.store.schema import downloads, outbox, tallies, tasks

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
POLICY = Policy(interval=10.0, give_up_after=3600.0, request_timeout=5.0)


def counted(database: Database) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Every row counted: what the tallies must say."""
    with database.engine.connect() as connection:
        finished = dict(
            connection.execute(
                select(tasks.c.finish_reason, func.count())
                .where(tasks.c.finished)
                .group_by(tasks.c.finish_reason)
            ).all()
        )
        settled = [
            dict(
                connection.execute(
                    select(table.c.state, func.count())
                    .where(table.c.state != "pending")
                    .group_by(table.c.state)
                ).all()
            )
            for table in (downloads, outbox)
        ]
    return finished, settled[0], settled[1]


def gauged(database: Database) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    gauges = database.reads.gauges(NOW)
    settled = [
        {state: n for state, n in counts.items() if state != "pending"}
        for counts in (gauges.downloads, gauges.notifications)
    ]
    return gauges.finished, settled[0], settled[1]


def test_the_counts_follow_every_change_and_survive_a_fold(database_url: str) -> None:
    database = Database.open(database_url)
    try:
        database.tasks.add_tasks([f"t{i}" for i in range(8)], None, NOW)
        claimed = database.polls.claim_due("d", NOW, NOW + timedelta(minutes=1), 3)
        rng = random.Random(1)
        answers = [Video("completed", 100), Video("failed", 30), Video("queued", 0)]
        records = [
            decide(task, FetchResult(200, 5.0, "{}", video, None), NOW, POLICY, rng)
            for task, video in zip(claimed, answers, strict=True)
        ]
        database.polls.record_polls("d", records)
        database.tasks.remove_tasks(["t5", "t6"], NOW, channels=("webhook",))
        database.polls.finish_timed_out(NOW, NOW + timedelta(seconds=1), channels=())
        for variant in ("video", "thumbnail"):
            database.follow_ups.schedule_downloads("t7", [NewDownload(variant, NOW)], NOW)
        jobs = database.follow_ups.claim_downloads("d", NOW, NOW + timedelta(minutes=1), 5)
        outcomes = {"video": "done", "thumbnail": "failed"}
        for job in jobs:
            database.follow_ups.record_download(
                "d", job, DownloadOutcome(outcomes[job.variant], NOW)
            )
        # Done again: the settled row goes back to pending, and its count with it.
        database.follow_ups.schedule_downloads("t7", [NewDownload("video", NOW)], NOW)
        events = database.follow_ups.claim_events("d", NOW, NOW + timedelta(minutes=1), 5)
        for job, state in zip(events, ("delivered", "given_up"), strict=False):
            database.follow_ups.record_event("d", job, EventOutcome(state, NOW))
        assert gauged(database) == counted(database)
        assert gauged(database)[0] == {"completed": 1, "failed": 1, "removed": 2, "timed_out": 4}
        database.tallies.fold()
        with database.engine.connect() as connection:
            rows = connection.execute(select(tallies.c.kind, tallies.c.key)).all()
        assert len(rows) == len(set(rows))  # one row per count
        assert gauged(database) == counted(database)
    finally:
        database.close()


def test_the_migration_counts_what_was_there(database_url: str) -> None:
    engine = create_engine(database_url)
    migrations.upgrade(engine, "0007")
    with engine.begin() as connection:
        connection.execute(
            tasks.insert(),
            [
                {
                    "task_id": f"old{i}",
                    "registered_at": NOW,
                    "next_poll_at": NOW,
                    "finished": i < 5,
                    "finish_reason": ["completed", "failed"][i % 2] if i < 5 else None,
                }
                for i in range(7)
            ],
        )
        connection.execute(
            outbox.insert(),
            [
                {
                    "task_id": "old0",
                    "channel": "webhook",
                    "event_id": event.event_id,
                    "payload": {},
                    "state": state,
                    "created_at": NOW,
                    "next_attempt_at": NOW,
                }
                for event, state in zip(
                    new_events(("webhook",) * 3, {}),
                    ("delivered", "delivered", "pending"),
                    strict=True,
                )
            ],
        )
    migrations.upgrade(engine)
    database = Database(engine)
    try:
        assert gauged(database) == counted(database)
        assert Counter(gauged(database)[0]) == Counter({"completed": 3, "failed": 2})
        assert gauged(database)[2] == {"delivered": 2}
    finally:
        database.close()
