"""Acting on tasks (docs/http-api.md, Actions) on real SQLite and PostgreSQL: poll now, reopen,
and the bulk actions by IDs and by filter, through the store, the Python API and the HTTP API
over a real server, beside a real daemon polling the simulator."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import API, make_tracker, run_until_done
from tests.doubles import Receiver
from tests.web import AUTH, TOKEN, daemon_running
from tracker import Secret, TaskStateError, Tracker, UnknownTaskError
from tracker.core.actions import Action
from tracker.core.models import TaskFilter
from tracker.store import Database, actions
from tracker.testing import RunningApp

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def wait_until(condition: Callable[[], bool], seconds: float) -> float:
    """How long ``condition`` took to hold; fails the test after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        time.sleep(0.02)
    return time.monotonic() - started


def polls(tracker: Tracker, task_id: str) -> int:
    task = tracker.database.reads.task(task_id)
    assert task is not None
    return task.poll_count


def test_poll_now_makes_a_task_due_and_a_running_daemon_polls_it_at_once(
    api: API, database_url: str
) -> None:
    """POST /v1/tasks/{id}/poll answers 202 and the daemon polls the task within a second,
    although its next poll was an hour away: through the daemon's own app, and through a
    `tracker serve` of its own (on PostgreSQL the daemon hears its NOTIFY); a reopened task is
    polled as soon. A finished task is refused with 409 naming how it finished; an unknown one
    is 404."""
    video = api.simulator.add_video("video_slow", queued=50)
    with make_tracker(api, database_url, poll_interval=3600.0) as tracker:
        tracker.settings = replace(tracker.settings, http_port=0, server_tokens=(Secret(TOKEN),))
        tracker.add([video, "video_gone"])
        tracker.remove(["video_gone"])
        served = Database.open(database_url)
        try:
            with daemon_running(tracker):
                wait_until(lambda: polls(tracker, video) == 1, 30)
                wait_until(lambda: "--http-port" in tracker.daemon.ports, 30)
                own = f"http://127.0.0.1:{tracker.daemon.ports['--http-port']}"
                with RunningApp(tracker.settings, served) as alone:
                    for count, url in enumerate((own, alone), start=2):
                        answer = httpx.post(f"{url}/v1/tasks/{video}/poll", headers=AUTH)
                        assert answer.status_code == 202, answer.text
                        assert answer.json()["task_id"] == video
                        assert wait_until(lambda n=count: polls(tracker, video) == n, 5) < 1.5
                    finished = httpx.post(f"{alone}/v1/tasks/video_gone/poll", headers=AUTH)
                    unknown = httpx.post(f"{alone}/v1/tasks/video_never/poll", headers=AUTH)
                    # A reopening wakes the daemons as a poll now does.
                    assert polls(tracker, "video_gone") == 0
                    reopened = httpx.post(f"{alone}/v1/tasks/video_gone/reopen", headers=AUTH)
                    assert reopened.status_code == 200 and not reopened.json()["finished"]
                    assert wait_until(lambda: polls(tracker, "video_gone") == 1, 5) < 1.5
        finally:
            served.close()
    assert finished.status_code == 409
    assert finished.headers["content-type"] == "application/problem+json"
    assert "has finished (removed)" in finished.json()["detail"]
    assert finished.json()["refused"] == [
        {"task_id": "video_gone", "refusal": "finished", "finish_reason": "removed"}
    ]
    assert unknown.status_code == 404


def ended_tasks(api: API, tracker: Tracker) -> dict[str, str]:
    """A task of each way to end, by that way, ended as the daemon and the commands end them."""
    made = {
        "completed": api.simulator.add_video("video_done", steps=1),
        "failed": api.simulator.add_video("video_failed", outcome="failed", steps=1),
        "not_found": api.simulator.add_video("video_vanished", outcome="vanished", steps=1),
    }
    tracker.add(list(made.values()))
    run_until_done(tracker)
    tracker.add(["video_removed", "video_late"])
    tracker.remove(["video_removed"])
    later = datetime.now(UTC) + timedelta(days=2)
    assert tracker.database.polls.finish_timed_out(later, later, channels=()) == ["video_late"]
    return {**made, "removed": "video_removed", "timed_out": "video_late"}


def test_reopen_watches_each_ended_kind_again_and_refuses_the_others(
    api: API, database_url: str
) -> None:
    """Failed, not found, timed out and removed tasks are watched again: unfinished, due now,
    their history kept and the finished counts without them; a completed or an unfinished task
    is refused, naming why, and nothing changes, not even the reopenable task asked with it."""
    with make_tracker(api, database_url) as tracker:
        ended = ended_tasks(api, tracker)
        tracker.add(["video_watched"])
        reopenable = [ended[kind] for kind in ("failed", "not_found", "timed_out", "removed")]
        histories = {task_id: len(tracker.history(task_id)) for task_id in reopenable}
        counted = tracker.stats().finished
        assert counted == {
            "completed": 1,
            "failed": 1,
            "not_found": 1,
            "timed_out": 1,
            "removed": 1,
        }

        before = {task.task_id: task for task in tracker.tasks()}
        with pytest.raises(TaskStateError) as refused:
            tracker.reopen([ended["failed"], ended["completed"], "video_watched"])
        assert refused.value.refused == [
            (ended["completed"], "completed", "completed"),
            ("video_watched", "unfinished", None),
        ]
        assert str(refused.value).splitlines() == [
            "task 'video_done' completed: a completed video is not watched again",
            "task 'video_watched' is still watched (unfinished): there is nothing to reopen",
        ]
        with pytest.raises(UnknownTaskError):
            tracker.reopen([ended["failed"], "video_never"])
        assert {task.task_id: task for task in tracker.tasks()} == before

        asked = datetime.now(UTC)
        assert tracker.reopen(reopenable) == reopenable
        for task_id in reopenable:
            task = tracker.database.reads.task(task_id)
            assert task is not None
            assert not task.finished and task.finish_reason is None and task.finished_at is None
            assert task.reopened_at is not None and task.reopened_at >= asked
            assert task.next_poll_at <= datetime.now(UTC)
            assert task.not_found_count == 0 and task.error_count == 0
            assert len(tracker.history(task_id)) == histories[task_id]
        assert tracker.stats().finished == {"completed": 1}
        assert tracker.stats().unfinished == len(reopenable) + 1


def test_give_up_after_counts_from_the_reopening(database_url: str) -> None:
    """A task timed out and reopened two days after its registration is given up a day after
    the reopening, not at once: the sweep and a poll's rule both count from it."""
    from tracker.core.models import ClaimedTask, FetchResult
    from tracker.daemon.rules import Policy, decide

    database = Database.open(database_url)
    try:
        database.tasks.add_tasks(["video_again"], None, T0)
        day = timedelta(days=1)
        assert database.polls.finish_timed_out(T0 + day, T0 + day, channels=()) == ["video_again"]
        reopened_at = T0 + 2 * day
        database.actions.act(Action.REOPEN, ["video_again"], reopened_at)
        late = reopened_at + timedelta(hours=23)
        assert database.polls.finish_timed_out(late, late - day, channels=()) == []
        task = database.reads.task("video_again")
        assert task is not None and task.reopened_at == reopened_at
        past = reopened_at + day + timedelta(seconds=1)
        assert database.polls.finish_timed_out(past, past - day, channels=()) == ["video_again"]
    finally:
        database.close()
    claimed = ClaimedTask("video_again", T0, 0, 0, late, reopened_at=reopened_at)
    failed_poll = FetchResult(503, 10.0, None, None, {"type": "http_error"})
    policy = Policy(interval=10, give_up_after=day.total_seconds(), request_timeout=5)
    assert decide(claimed, failed_poll, late, policy, random.Random(1)).finish_reason is None
    timed_out = decide(claimed, failed_poll, past, policy, random.Random(1))
    assert timed_out.finish_reason == "timed_out"


def test_bulk_actions_by_ids_and_by_filter_over_http(
    api: API, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """POST /v1/bulk/{remove,poll,reopen}: by IDs (unknown ones not matched) and by the filter
    GET /v1/tasks takes, a few tasks per transaction here so that a filter spans batches; a
    filter matching nothing is {"matched": 0, "changed": 0}; ids and filter together, or
    neither, are a 422 naming the field, and nothing changes."""
    monkeypatch.setattr(actions, "BULK_BATCH", 3)
    with make_tracker(api, database_url) as tracker:
        tracker.settings = replace(tracker.settings, server_tokens=(Secret(TOKEN),))
        tracker.add([f"video_a{n}" for n in range(7)], label="a")
        tracker.add([f"video_b{n}" for n in range(2)], label="b")
        with (
            RunningApp(tracker.settings, tracker.database) as url,
            httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
        ):

            def bulk(action: str, body: object) -> httpx.Response:
                return client.post(f"/v1/bulk/{action}", json=body)

            removed = bulk("remove", {"filter": {"label": "a"}})
            assert removed.status_code == 200 and removed.json() == {"matched": 7, "changed": 7}
            assert bulk("remove", {"filter": {"label": "a"}}).json() == {"matched": 7, "changed": 0}
            polled = bulk("poll", {"ids": ["video_a0", "video_b0", "video_b0", "video_never"]})
            assert polled.json() == {"matched": 2, "changed": 1}
            reopened = bulk(
                "reopen", {"filter": {"label": "a", "prefix": "video_a", "finished": True}}
            )
            assert reopened.json() == {"matched": 7, "changed": 7}
            nothing = bulk("reopen", {"filter": {"status": "no-such-status"}})
            assert nothing.json() == {"matched": 0, "changed": 0}
            unchanged = {task.task_id: task for task in tracker.tasks()}
            both = bulk("remove", {"ids": ["video_b0"], "filter": {"label": "b"}})
            neither = bulk("remove", {})
            assert {task.task_id: task for task in tracker.tasks()} == unchanged
            not_json = client.post("/v1/bulk/poll", content="ids=video_b0")
            watched = client.post("/v1/tasks/video_b0/reopen")
            assert {task.task_id: task for task in tracker.tasks()} == unchanged
    assert both.status_code == 422
    assert [error["pointer"] for error in both.json()["errors"]] == ["/filter"]
    assert neither.status_code == 422
    assert [error["pointer"] for error in neither.json()["errors"]] == ["/ids"]
    assert not_json.status_code == 415
    assert watched.status_code == 409 and "still watched" in watched.json()["detail"]
    assert tracker.database.reads.count(TaskFilter(finished=False)) == 9


def test_bulk_remove_owes_the_notifications_a_single_removal_does(
    api: API, database_url: str
) -> None:
    """Tasks removed in bulk each owe their event, which a daemon with that channel delivers,
    as one removed alone does; a reopened task that finishes again owes its event again."""
    receiver = Receiver()
    try:
        with make_tracker(api, database_url, notify_url=receiver.url) as tracker:
            tracker.add(["video_1", "video_2", "video_3"], label="batch")
            channels = tracker.settings.notification_channels()
            count = tracker.database.actions.bulk(
                Action.REMOVE, TaskFilter(label="batch"), datetime.now(UTC), channels=channels
            )
            assert (count.matched, count.changed) == (3, 3)
            run_until_done(tracker)
            tracker.reopen(["video_1"])
            tracker.remove(["video_1"])
            run_until_done(tracker)
    finally:
        receiver.close()
    posted = [event for _headers, event in receiver.deliveries()]
    assert sorted(event["task_id"] for event in posted) == [
        "video_1",
        "video_1",
        "video_2",
        "video_3",
    ]
    assert {event["finish_reason"] for event in posted} == {"removed"}
    assert {event["label"] for event in posted} == {"batch"}


def test_the_overview_counts_what_select_all_matching_chooses_up_to_a_bound(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "Select all N matching" says how many tasks a label's filter matches beyond the page,
    counted up to a bound (then "more than"), so that the page's cost stays bounded."""
    from tracker.settings import Settings
    from tracker.web import pages

    database = Database.open(sqlite_url)
    try:
        database.tasks.add_tasks([f"video_{n:02}" for n in range(40)], "many", T0)
        with RunningApp(Settings(database_url=sqlite_url), database) as url:
            counted = httpx.get(f"{url}/?label=many&limit=25").text
            monkeypatch.setattr(pages, "MATCHING_COUNTED_UP_TO", 30)
            bounded = httpx.get(f"{url}/?label=many&limit=25").text
    finally:
        database.close()
    assert "Select all 40 matching" in counted
    assert "Select all more than 30 matching" in bounded
