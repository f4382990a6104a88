"""The store reads the dashboard adds, on a real SQLite file and a real PostgreSQL database:
tasks by how they finished, broad ID prefixes paged alike by either plan, a task's polls for
its chart and timeline, and why tasks failed."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tracker.core.models import Failure, FetchResult, Position, TaskFilter
from tracker.core.video import Video
from tracker.daemon.poller import Policy, decide
from tracker.store import Database, reads

NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
POLICY = Policy(interval=10, give_up_after=3600, request_timeout=5)


def poll(database: Database, task_id: str, fetch: FetchResult, at: datetime) -> None:
    """One poll of ``task_id`` answered ``fetch``, written as the daemon writes it."""
    claimed = database.polls.claim_due(
        "d", at, at + timedelta(seconds=60), 100, include_not_due=True
    )
    [task] = [one for one in claimed if one.task_id == task_id]
    database.polls.record_polls("d", [decide(task, fetch, at, POLICY, random.Random(1))])
    database.polls.release("d", [one.task_id for one in claimed if one is not task])


def video(status: str, progress: int, error: object = None) -> FetchResult:
    return FetchResult(200, 1.0, f'{{"status": "{status}"}}', Video(status, progress, error), None)


def test_tasks_are_listed_by_how_they_finished(database: Database) -> None:
    """The overview's states: a finish reason selects exactly the tasks that ended so."""
    database.tasks.add_tasks(["done", "gone", "open"], None, NOW)
    poll(database, "done", video("completed", 100), NOW)
    database.tasks.remove_tasks(["gone"], NOW, channels=())

    def ids(reason: str) -> list[str]:
        return [task.task_id for task in database.reads.page(TaskFilter(finish_reason=reason), 10)]

    assert (ids("completed"), ids("removed"), ids("failed")) == (["done"], ["gone"], [])
    assert database.reads.count(TaskFilter(finish_reason="removed")) == 1


def test_a_broad_prefix_pages_alike_by_either_plan(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ID prefix matching many tasks is read by walking the registrations (SQLite) rather
    than sorting every match; the pages are the same, newest first, paged without a gap."""
    for minute in range(12):
        registered = NOW + timedelta(minutes=minute)
        database.tasks.add_tasks([f"video_{minute:02d}", f"other_{minute:02d}"], None, registered)

    def pages() -> list[list[str]]:
        seen, after = [], None
        while page := database.reads.page(TaskFilter(prefix="video_"), 5, after):
            seen.append([task.task_id for task in page])
            after = Position(page[-1].registered_at, page[-1].task_id)
        return seen

    narrow = pages()
    monkeypatch.setattr(reads, "_BROAD_PREFIX", 3)
    broad = pages()
    newest_first = [f"video_{minute:02d}" for minute in reversed(range(12))]
    assert narrow == broad == [newest_first[:5], newest_first[5:10], newest_first[10:]]
    assert database.reads.count(TaskFilter(prefix="video_")) == 12


def test_a_tasks_points_are_its_polls_without_bodies_and_failures_keep_their_error(
    database: Database,
) -> None:
    """Points come oldest first with status, progress and error; the newest snapshot's error
    says why a task failed, or why its last poll failed; a task whose last poll went well has
    none."""
    database.tasks.add_tasks(["a", "b", "c"], None, NOW)
    poll(database, "a", video("queued", 0), NOW)
    failed = FetchResult.failed(Failure.HTTP_STATUS, "upstream busy", 1.0, http_status=503)
    poll(database, "a", failed, NOW + timedelta(seconds=10))
    blocked = {"code": "moderation_blocked", "message": "The prompt was blocked."}
    poll(database, "a", video("failed", 0, blocked), NOW + timedelta(seconds=20))
    poll(database, "b", failed, NOW)
    poll(database, "c", failed, NOW)
    poll(database, "c", video("in_progress", 40), NOW + timedelta(seconds=10))
    points = database.timelines.points("a")
    assert [(p.status, p.progress, p.http_status) for p in points] == [
        ("queued", 0, 200),
        (None, None, 503),
        ("failed", 0, 200),
    ]
    assert points[1].error["message"] == "upstream busy"
    assert [p.polled_at for p in points] == sorted(p.polled_at for p in points)
    errors = database.timelines.final_errors(["a", "b", "c", "unknown"])
    assert errors["a"] == blocked
    assert errors["b"]["message"] == "upstream busy"
    assert set(errors) == {"a", "b"}
