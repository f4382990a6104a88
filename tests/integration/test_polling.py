"""The tracker end to end: the real simulator over HTTP on 127.0.0.1, a real SQLite file."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable

import pytest

from tests.conftest import API, make_tracker, run_until_done
from tracker import Tracker, UnknownTaskError
from tracker.simulator import Reply


async def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_tasks_are_polled_through_their_lifecycle_until_done(api: API, database_url: str) -> None:
    """run --until-done: every status becomes a snapshot in order, and terminal ones finish."""
    completed = api.simulator.add_video("video_ok", steps=3)
    failed = api.simulator.add_video("video_bad", steps=1, outcome="failed")
    with make_tracker(api, database_url) as tracker:
        tracker.add([completed, failed], label="lifecycle")
        asyncio.run(tracker.run_async(until_done=True))
        ok_history = tracker.history(completed)
        bad_history = tracker.history(failed)
        tasks = {task.task_id: task for task in tracker.tasks()}
    assert [(s.status, s.progress) for s in ok_history] == [
        ("queued", 0),
        ("in_progress", 25),
        ("in_progress", 50),
        ("in_progress", 75),
        ("completed", 100),
    ]
    assert [s.finished for s in ok_history] == [False] * 4 + [True]
    assert all(s.http_status == 200 and s.error is None for s in ok_history)
    assert bad_history[-1].status == "failed"
    assert bad_history[-1].error == {
        "code": "moderation_blocked",
        "message": "The prompt was blocked.",
    }
    assert (tasks[completed].finish_reason, tasks[failed].finish_reason) == ("completed", "failed")
    assert tasks[completed].expires_at is not None
    assert tasks[completed].poll_count == 5 == api.simulator.polls(completed)
    assert tasks[completed].label == "lifecycle"


def test_relay_variants_are_understood(api: API, database_url: str) -> None:
    """SUCCESS, "45%" progress and millisecond timestamps from a relay read as OpenAI's do."""
    relay = api.simulator.add_video("sora-2:task_01HRELAY", steps=2, style="relay")
    with make_tracker(api, database_url) as tracker:
        tracker.add([relay])
        asyncio.run(tracker.run_async(until_done=True))
        history = tracker.history(relay)
        [task] = tracker.tasks()
    assert [s.status for s in history] == ["SUBMITTED", "IN_PROGRESS", "IN_PROGRESS", "SUCCESS"]
    assert [s.progress for s in history] == [0, 33, 67, 100]
    assert task.finish_reason == "completed"
    assert task.created_at is not None and abs(task.created_at.timestamp() - time.time()) < 600


def test_a_relay_answering_in_envelopes_at_its_query_path_is_followed_to_the_end(
    api: API, database_url: str
) -> None:
    """status_path "/v1/video/query?id={id}" over a real socket: every poll goes to the query
    path, the {"code", "msg", "data"} envelope with task_id, state and fail_reason is read, the
    raw bodies are stored, and the tasks finish as completed and failed."""
    done = api.simulator.add_video("sora-2:task_01HENVOK", steps=2, style="envelope")
    failed = api.simulator.add_video(
        "sora-2:task_01HENVBAD", steps=1, outcome="failed", style="envelope"
    )
    with make_tracker(api, database_url, status_path="/v1/video/query?id={id}") as tracker:
        tracker.add([done, failed])
        run_until_done(tracker)
        done_history = tracker.history(done)
        failed_history = tracker.history(failed)
        tasks = {task.task_id: task for task in tracker.tasks()}
    assert [(s.status, s.progress) for s in done_history] == [
        ("SUBMITTED", 0),
        ("IN_PROGRESS", 33),
        ("IN_PROGRESS", 67),
        ("SUCCESS", 100),
    ]
    assert all(s.http_status == 200 and s.error is None for s in done_history)
    assert done_history[-1].body["data"]["task_id"] == done
    assert failed_history[-1].status == "FAILURE"
    assert failed_history[-1].error == {"code": None, "message": "The prompt was blocked."}
    assert (tasks[done].finish_reason, tasks[failed].finish_reason) == ("completed", "failed")
    assert api.simulator.queries[done] == api.simulator.polls(done) == 4


def test_an_answer_about_another_task_is_an_error_snapshot_not_its_status(
    api: API, database_url: str
) -> None:
    """A relay answering another task's completed status: the poll is an id_mismatch error
    snapshot with the body kept, the task stays unfinished, and the next true answer counts."""
    other = json.dumps({"id": "video_other", "status": "completed", "progress": 100}).encode()
    video = api.simulator.script(
        "video_mine",
        [
            Reply(video={"status": "in_progress", "progress": 10}),
            Reply(raw=other),
            Reply(video={"status": "completed", "progress": 100}),
        ],
    )
    with make_tracker(api, database_url) as tracker:
        tracker.add([video])
        asyncio.run(tracker.run_async(until_done=True))
        history = tracker.history(video)
        [task] = tracker.tasks()
    assert [(s.status, s.progress) for s in history] == [
        ("in_progress", 10),
        (None, None),
        ("completed", 100),
    ]
    mismatch = history[1]
    assert mismatch.error["type"] == "id_mismatch"
    assert "'video_other'" in mismatch.error["message"]
    assert mismatch.body["id"] == "video_other" and not mismatch.finished
    assert (task.finish_reason, task.poll_count) == ("completed", 3)


def test_three_404s_finish_an_unknown_task_as_not_found(api: API, database_url: str) -> None:
    """An ID the API does not know is polled three times, then finished as not_found."""
    with make_tracker(api, database_url) as tracker:
        tracker.add(["video_never_created"])
        asyncio.run(tracker.run_async(until_done=True))
        history = tracker.history("video_never_created")
        [task] = tracker.tasks()
    assert [s.http_status for s in history] == [404, 404, 404]
    assert history[0].error["code"] == "video_not_found"
    assert [s.finished for s in history] == [False, False, True]
    assert (task.finish_reason, task.not_found_count) == ("not_found", 3)
    assert api.simulator.polls("video_never_created") == 3


def test_a_task_added_while_the_daemon_runs_is_polled_within_one_interval(
    api: API, database_url: str
) -> None:
    """No restart needed: a new registration is due at once and the next tick claims it."""
    interval = 1.0
    slow = api.simulator.add_video("video_long", steps=1000)
    late = api.simulator.add_video("video_late", steps=1)
    with make_tracker(api, database_url, poll_interval=interval) as tracker:
        tracker.add([slow])

        async def scenario() -> None:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            await wait_for(lambda: api.simulator.polls(slow) >= 1)
            await asyncio.to_thread(tracker.add, [late])
            await wait_for(lambda: api.simulator.polls(late) >= 1, timeout=interval * 1.5)
            stop.set()
            await daemon

        asyncio.run(scenario())
        [task] = [task for task in tracker.tasks() if task.task_id == late]
    assert task.last_polled_at is not None
    assert (task.last_polled_at - task.registered_at).total_seconds() <= interval


def test_a_task_added_through_the_running_daemons_own_tracker_wakes_it(
    api: API, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An idle daemon looks for new work only now and then (made a minute here); a task
    registered through its own Tracker wakes it, and is polled at once."""
    from tracker.daemon import poller

    monkeypatch.setattr(poller, "UNHEARD_LOOK_SECONDS", 60.0)
    monkeypatch.setattr(poller, "LOOK_SECONDS", 60.0)
    slow = api.simulator.add_video("video_long", steps=1000)
    late = api.simulator.add_video("video_late", steps=1000)
    with make_tracker(api, database_url, poll_interval=60.0) as tracker:
        tracker.add([slow])

        async def scenario() -> None:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            await wait_for(lambda: tracker.tasks()[0].poll_count >= 1)
            await asyncio.sleep(0.5)  # a few ticks: nothing is due for a minute, it rests
            await asyncio.to_thread(tracker.add, [late])
            await wait_for(lambda: api.simulator.polls(late) >= 1, timeout=10)
            stop.set()
            await daemon

        asyncio.run(scenario())
    assert api.simulator.polls(slow) == 1


def test_each_task_is_polled_about_once_per_interval(api: API, database_url: str) -> None:
    """Gaps between polls of one task stay within the ±10% jitter plus a tick."""
    interval = 0.5
    video = api.simulator.add_video("video_steady", steps=1000)
    with make_tracker(api, database_url, poll_interval=interval) as tracker:
        tracker.add([video])

        async def scenario() -> None:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            await wait_for(lambda: api.simulator.polls(video) >= 6)
            stop.set()
            await daemon

        asyncio.run(scenario())
        history = tracker.history(video)
    gaps = [(b.polled_at - a.polled_at).total_seconds() for a, b in itertools.pairwise(history)]
    assert gaps and all(interval * 0.9 <= gap <= interval * 1.1 + 0.2 for gap in gaps), gaps


def test_no_task_is_polled_twice_at_once(api: API, database_url: str) -> None:
    """With slow answers and many tasks in flight, the server never sees one task twice at once."""
    ids = [
        api.simulator.script(
            f"video_slow_{i}",
            [Reply(video={"status": "in_progress"}, delay=0.05)] * 3
            + [Reply(video={"status": "completed"})],
        )
        for i in range(40)
    ]
    with make_tracker(api, database_url, poll_interval=0.05, concurrency=8) as tracker:
        tracker.add(ids)
        asyncio.run(tracker.run_async(until_done=True))
        snapshots = sum(len(tracker.history(task_id)) for task_id in ids)
    assert api.simulator.overlaps == 0
    assert snapshots == sum(api.simulator.polls(task_id) for task_id in ids) == 40 * 4


def test_a_wrong_token_finishes_nothing_and_poll_reports_it(api: API, database_url: str) -> None:
    """401: an error snapshot is written, the pass reports the refusal, no task is finished."""
    video = api.simulator.add_video("video_auth", steps=1)
    with Tracker(database_url=database_url, api_base=api.url, token="sk-wrong") as tracker:
        tracker.add([video, "video_other"])
        summary = tracker.poll_once()
        tasks = tracker.tasks()
        history = tracker.history(tasks[0].task_id)
    assert summary.refused
    assert summary.paused_until is not None
    # Both requests were in flight together: one refusal step (one interval), not two.
    assert (summary.paused_until - history[0].polled_at).total_seconds() == pytest.approx(15, abs=1)
    assert not any(task.finished for task in tasks)
    assert history[0].http_status == 401
    assert history[0].error["code"] == "invalid_api_key"


def test_tasks_past_give_up_after_are_finished_as_timed_out(api: API, database_url: str) -> None:
    """A task that never ends is finished as timed_out once give-up-after has passed."""
    forever = api.simulator.add_video("video_forever", steps=100000)
    with make_tracker(api, database_url, give_up_after=1.0, poll_interval=0.2) as tracker:
        started = time.monotonic()  # before registration: give-up-after counts from it
        tracker.add([forever])
        asyncio.run(tracker.run_async(until_done=True))
        [task] = tracker.tasks()
    assert task.finish_reason == "timed_out"
    assert 1.0 <= time.monotonic() - started < 10
    assert task.finished_at is not None
    assert (task.finished_at - task.registered_at).total_seconds() >= 1.0


def test_poll_once_all_polls_tasks_that_are_not_due(api: API, database_url: str) -> None:
    """`poll --all` asks about every unfinished task even right after a pass."""
    video = api.simulator.add_video("video_again", steps=10)
    with make_tracker(api, database_url, poll_interval=3600) as tracker:
        tracker.add([video])
        assert tracker.poll_once().polled == 1
        assert tracker.poll_once().polled == 0
        assert tracker.poll_once(all_unfinished=True).polled == 1
    assert api.simulator.polls(video) == 2


def test_a_removed_task_is_not_polled_again(api: API, database_url: str) -> None:
    """`remove` stops polling at once; the history so far is kept."""
    video = api.simulator.add_video("video_removed", steps=1000)
    with make_tracker(api, database_url, poll_interval=0.1) as tracker:
        tracker.add([video])

        async def scenario() -> None:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            await wait_for(lambda: api.simulator.polls(video) >= 2)
            await asyncio.to_thread(tracker.remove, [video])
            polls_at_removal = api.simulator.polls(video)
            await asyncio.sleep(0.5)
            assert api.simulator.polls(video) <= polls_at_removal + 1  # one may be in flight
            stop.set()
            await daemon

        asyncio.run(scenario())
        [task] = tracker.tasks()
        history = tracker.history(video)
    assert task.finish_reason == "removed"
    assert len(history) >= 1  # a result in flight at removal is dropped, the rest kept


def test_wait_returns_the_tasks_it_was_given_once_they_end(api: API, database_url: str) -> None:
    """`Tracker.wait(ids)` polls until those tasks end, whatever the others do, and gives them
    back as they ended; past its timeout it stops and says how many did not end; an unknown ID
    is refused before anything runs. The async twin does the same inside a running loop."""
    quick = [api.simulator.add_video(f"video_quick_{i}", steps=2) for i in range(2)]
    slow = api.simulator.add_video("video_slow", steps=1000)
    with make_tracker(api, database_url) as tracker:
        tracker.add([*quick, slow])
        began = time.monotonic()
        ended = tracker.wait(reversed(quick), timeout=30)
        assert [task.task_id for task in ended] == list(reversed(quick))
        assert {task.finish_reason for task in ended} == {"completed"}
        assert time.monotonic() - began < 10
        assert not tracker.history(slow)[-1].finished
        with pytest.raises(TimeoutError, match=r"1 of 1 tasks still unfinished after 0\.5s"):
            tracker.wait([slow], timeout=0.5)
        with pytest.raises(UnknownTaskError):
            tracker.wait(["video_never_added"])
        again = asyncio.run(tracker.wait_async(quick))
        assert [task.task_id for task in again] == quick
