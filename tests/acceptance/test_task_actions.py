"""`tracker poll-now` and `tracker reopen` as users run them, on SQLite and PostgreSQL: what
they change and say, a line for each task they refuse (exit 2, nothing changed), and one for
an unknown or invalid ID."""

from __future__ import annotations

import json

from tests.acceptance.conftest import Run, assert_usage_error


def test_poll_now_and_reopen_act_and_say_so(tracker: Run, database_url: str) -> None:
    """poll-now makes an unfinished task due; reopen watches a removed task again, its
    reopening time kept; each says what it did in one line."""
    db = ("--db", database_url)
    assert tracker("add", "video_a", "video_b", *db).returncode == 0
    tracker("remove", "video_b", *db)
    polled = tracker("poll-now", "video_a", *db)
    assert polled.returncode == 0, polled.stderr
    assert polled.stdout.strip() == "1 task due now; a running daemon polls them within a second"
    reopened = tracker("reopen", "video_b", "video_b", *db)
    assert reopened.returncode == 0, reopened.stderr
    assert reopened.stdout.strip() == "reopened 1 task: watched again, due now"
    query = "SELECT task_id, finished, finish_reason, reopened_at IS NOT NULL AS reopened "
    rows = json.loads(tracker("sql", query + "FROM tasks ORDER BY task_id", "--json", *db).stdout)
    assert [(r["task_id"], bool(r["finished"]), r["reopened"]) for r in rows] == [
        ("video_a", False, False),
        ("video_b", False, True),
    ]
    assert {row["finish_reason"] for row in rows} == {None}


def test_a_line_for_each_task_refused_and_nothing_changed(tracker: Run, database_url: str) -> None:
    """Tasks the action does not take are each named on a line of their own (exit 2), and the
    others asked with them are left as they were; an unknown ID and an invalid one are a line
    each too."""
    db = ("--db", database_url)
    tracker("add", "video_a", "video_b", "video_c", *db)
    tracker("remove", "video_b", "video_c", *db)
    before = tracker("list", "--json", *db).stdout

    refused = tracker("reopen", "video_b", "video_a", *db)
    assert_usage_error(refused, "task 'video_a' is still watched (unfinished)")
    both = tracker("poll-now", "video_a", "video_b", "video_c", *db)
    assert both.returncode == 2
    assert both.stderr.splitlines() == [
        f"tracker: error: task {task_id!r} has finished (removed): it is no longer polled; "
        "reopen it to watch it again"
        for task_id in ("video_b", "video_c")
    ]
    assert_usage_error(tracker("reopen", "video_b", "video_never", *db), "unknown task ID")
    assert_usage_error(tracker("poll-now", "bad/id", *db), "bad/id")
    assert tracker("list", "--json", *db).stdout == before
