"""Every fault of docs/failures.md, injected through the real simulator over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sqlite3
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import trustme
from sqlalchemy.exc import OperationalError

from tests.conftest import API, run_until_done
from tracker import Snapshot, Tracker
from tracker.simulator import Reply, Simulator, SimulatorServer

RUNNING = Reply(video={"status": "in_progress", "progress": 50})
DONE = Reply(video={"status": "completed", "progress": 100})


def make_tracker(url: str, database_url: str, token: str, **overrides: object) -> Tracker:
    options: dict[str, object] = {"poll_interval": 0.1, "request_timeout": 2.0}
    options.update(overrides)
    return Tracker(database_url=database_url, api_base=url, token=token, **options)  # type: ignore[arg-type]


def gaps(history: list[Snapshot]) -> list[float]:
    return [(b.polled_at - a.polled_at).total_seconds() for a, b in itertools.pairwise(history)]


@pytest.mark.parametrize(
    ("fault", "http_status", "error_type"),
    [
        (
            Reply(status=500, raw=b'{"error": {"message": "boom", "type": "server_error"}}'),
            500,
            "server_error",
        ),
        (Reply(status=502, raw=b"<html><body>502 Bad Gateway</body></html>"), 502, "http_error"),
        (Reply(status=503, raw=b"upstream overloaded"), 503, "http_error"),
        (Reply(raw=b"<!doctype html><p>maintenance</p>"), 200, "invalid_json"),
        (Reply(raw=b"\x00\x01 bytes\x00"), 200, "invalid_json"),
        (Reply(raw=b'{"code": 0, "msg": "ok", "data": null}'), 200, "not_a_video"),
        (
            Reply(raw=b'{"status": "in_progress", "pad": "' + b"x" * (1024 * 1024) + b'"}'),
            200,
            "body_too_large",
        ),
        (Reply(drop=True), None, "connection_error"),
    ],
    ids=["500", "502", "503", "not-json", "binary", "not-a-video", "over-1MiB", "dropped"],
)
def test_a_failed_poll_is_an_error_snapshot_and_the_task_goes_on(
    api: API, database_url: str, fault: Reply, http_status: int | None, error_type: str
) -> None:
    """Each kind of failure writes an error snapshot saying what went wrong; the task is polled
    again and finishes normally."""
    video = api.simulator.script("video_fault", [fault, RUNNING, DONE])
    with make_tracker(api.url, database_url, api.token) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        history = tracker.history(video)
        [task] = tracker.tasks()
    failed = history[0]
    assert failed.http_status == http_status
    assert failed.error["type"] == error_type
    assert failed.latency_ms is not None and failed.latency_ms >= 0
    assert failed.status is None and not failed.finished
    assert [s.status for s in history[1:]] == ["in_progress", "completed"]
    assert history[1].error is None
    assert (task.finish_reason, task.error_count, task.last_error) == ("completed", 0, None)
    assert len(history) == api.simulator.polls(video) == 3


def test_a_body_over_one_mebibyte_is_not_stored(api: API, database_url: str) -> None:
    """The oversized body is dropped: the snapshot's body column is NULL."""
    huge = b'{"status": "completed", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    video = api.simulator.script("video_huge", [Reply(raw=huge), DONE])
    with make_tracker(api.url, database_url, api.token) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        history = tracker.history(video)
    assert history[0].body is None
    assert history[0].error == {"type": "body_too_large", "message": "response body over 1 MiB"}


def test_consecutive_errors_back_off_exponentially_up_to_the_cap(
    api: API, database_url: str
) -> None:
    """Gaps after failures grow (1-2, 2-4, 4-8 intervals…) and stop at 10 intervals."""
    error = Reply(status=500, raw=b"{}")
    video = api.simulator.script("video_flaky", [error] * 6 + [DONE])
    interval = 0.1
    with make_tracker(api.url, database_url, api.token, poll_interval=interval) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        history = tracker.history(video)
    waits = gaps(history)
    tick = 0.06  # a due task waits for the next tick at most this long
    for errors, wait in enumerate(waits, start=1):
        ceiling = min(interval * 2**errors, 10 * interval)
        assert ceiling * 0.5 <= wait <= ceiling + tick, (errors, waits)
    assert [s.http_status for s in history] == [500] * 6 + [200]


def test_503_retry_after_is_waited_out_before_the_next_request(api: API, database_url: str) -> None:
    """503 with Retry-After: that task is not asked again until the wait has passed."""
    busy = Reply(status=503, raw=b"{}", headers={"Retry-After": "1"})
    video = api.simulator.script("video_busy", [busy, DONE])
    with make_tracker(api.url, database_url, api.token) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        history = tracker.history(video)
    assert [s.http_status for s in history] == [503, 200]
    assert gaps(history)[0] >= 1.0


def test_429_pauses_every_task_until_retry_after(api: API, database_url: str) -> None:
    """A 429 on one task holds back the requests of all tasks (the limit is the account's)."""
    limited = api.simulator.script(
        "video_limited", [Reply(status=429, raw=b"{}", headers={"Retry-After": "1"}), DONE]
    )
    others = [api.simulator.script(f"video_other_{i}", [RUNNING] * 3 + [DONE]) for i in range(5)]
    with make_tracker(api.url, database_url, api.token, concurrency=1) as tracker:
        tracker.add([limited])
        tracker.add(others)
        run_until_done(tracker)
        refusal = tracker.history(limited)[0]
        after = [
            s.polled_at
            for task_id in others
            for s in tracker.history(task_id)
            if s.polled_at > refusal.polled_at
        ]
    assert refusal.http_status == 429
    assert after and min(after) >= refusal.polled_at + timedelta(seconds=1)


def test_429_wait_is_stored_so_a_restart_honours_it(api: API, database_url: str) -> None:
    """The pause a 429 asked for lands in every task's next_poll_at: it survives a restart."""
    limited = api.simulator.script(
        "video_limited", [Reply(status=429, raw=b"{}", headers={"Retry-After": "3600"})]
    )
    other = api.simulator.script("video_other", [RUNNING])
    with make_tracker(api.url, database_url, api.token, concurrency=1) as tracker:
        tracker.add([limited])
        tracker.add([other])
        tracker.poll_once()
        tasks = tracker.tasks()
        refused_at = tracker.history(limited)[0].polled_at
        assert tracker.poll_once().polled == 0  # a new pass, as after a restart
    assert all(task.next_poll_at >= refused_at + timedelta(seconds=3599) for task in tasks)
    assert api.simulator.polls(other) == 0


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_back_off_the_whole_daemon_loudly_and_finish_nothing(
    api: API, database_url: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused token pauses every task with growing waits and one ERROR line per step."""
    refused = Reply(status=status, raw=b'{"error": {"message": "no", "type": "auth"}}')
    video = api.simulator.script("video_auth", [refused] * 3 + [DONE])
    with (
        make_tracker(api.url, database_url, api.token, concurrency=1) as tracker,
        caplog.at_level(logging.ERROR, logger="tracker"),
    ):
        tracker.add([video])
        run_until_done(tracker)
        history = tracker.history(video)
        [task] = tracker.tasks()
    steps = [r.message for r in caplog.records if "refused the token" in r.message]
    assert len(steps) == 3
    assert [m.split("task ")[1].split(" (")[0] for m in steps] == [
        "for 0.1s",
        "for 0.2s",
        "for 0.4s",
    ]
    assert [s.http_status for s in history] == [status] * 3 + [200]
    assert not any(s.finished for s in history[:3])
    assert task.finish_reason == "completed"


def test_fewer_than_three_404s_keep_polling(api: API, database_url: str) -> None:
    """Two 404s (a task not visible yet) and then the video: it finishes as completed."""
    missing = Reply(status=404, raw=b'{"error": {"message": "not found", "type": "x"}}')
    video = api.simulator.script("video_late", [missing, missing, RUNNING, missing, DONE])
    with make_tracker(api.url, database_url, api.token) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        [task] = tracker.tasks()
    assert task.finish_reason == "completed"
    assert api.simulator.polls(video) == 5


def test_an_unknown_status_keeps_the_task_polling(api: API, database_url: str) -> None:
    """A status nobody documented is stored as sent and is not mistaken for an end."""
    odd = Reply(video={"status": "RENDERING_PHASE_2", "progress": "45%"})
    video = api.simulator.script("video_odd", [odd, DONE])
    with make_tracker(api.url, database_url, api.token) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        history = tracker.history(video)
    assert [(s.status, s.progress, s.finished) for s in history] == [
        ("RENDERING_PHASE_2", 45, False),
        ("completed", 100, True),
    ]


def test_a_response_slower_than_the_request_timeout_is_a_timeout_snapshot(
    api: API, database_url: str
) -> None:
    """No answer within --request-timeout: http_status NULL, error timeout, then a retry."""
    video = api.simulator.script("video_slow", [Reply(video={"status": "queued"}, delay=3), DONE])
    with make_tracker(api.url, database_url, api.token, request_timeout=0.5) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        history = tracker.history(video)
    assert history[0].http_status is None
    assert history[0].error == {"type": "timeout", "message": "no complete response within 0.5s"}
    assert 450 <= (history[0].latency_ms or 0) < 1500
    assert history[-1].status == "completed"


def test_the_server_down_for_a_while_then_back(database_url: str) -> None:
    """Refused connections are error snapshots; once the server is back, tasks finish."""
    simulator = Simulator(token="sk-down")
    video = simulator.add_video("video_patient", steps=1)
    first = SimulatorServer(simulator)
    url = first.start()
    port = first.port
    first.stop()

    with make_tracker(url, database_url, "sk-down", poll_interval=0.1) as tracker:
        tracker.add([video])

        async def scenario() -> None:
            daemon = asyncio.create_task(tracker.run_async(until_done=True))
            await wait_for(lambda: len(tracker.history(video)) >= 3)
            again = SimulatorServer(simulator, port=port)
            await asyncio.to_thread(again.start)
            try:
                await asyncio.wait_for(daemon, 30)
            finally:
                await asyncio.to_thread(again.stop)

        asyncio.run(scenario())
        history = tracker.history(video)
        [task] = tracker.tasks()
    refused = [s for s in history if s.http_status is None]
    assert len(refused) >= 3
    assert all(s.error["type"] == "connection_error" for s in refused)
    assert task.finish_reason == "completed"
    assert len(history) == len(refused) + simulator.polls(video)


def test_redirects_are_not_followed_to_another_host(api: API, database_url: str) -> None:
    """A redirect to another host is an error snapshot; that host never sees a request."""
    elsewhere = Simulator(token=api.token)
    with SimulatorServer(elsewhere) as other_url:
        moved = Reply(status=307, raw=b"", headers={"Location": f"{other_url}/v1/videos/x"})
        video = api.simulator.script("video_moved", [moved, DONE])
        with make_tracker(api.url, database_url, api.token) as tracker:
            tracker.add([video])
            run_until_done(tracker)
            history = tracker.history(video)
    assert history[0].http_status == 307
    assert history[0].error["type"] == "redirect"
    assert sum(elsewhere.requests.values()) == 0


def test_tls_certificates_are_verified(database_url: str) -> None:
    """An HTTPS API with a certificate nobody trusts is refused before any request is sent."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    simulator = Simulator(token="sk-tls")
    video = simulator.add_video("video_tls", steps=1)
    with (
        SimulatorServer(simulator, tls=context) as url,
        make_tracker(url, database_url, "sk-tls") as tracker,
    ):
        assert url.startswith("https://")
        tracker.add([video])
        tracker.poll_once()
        [snapshot] = tracker.history(video)
    assert snapshot.http_status is None
    assert "CERTIFICATE_VERIFY_FAILED" in snapshot.error["message"]
    assert simulator.polls(video) == 0


def test_ids_reach_the_api_as_one_path_segment(api: API, database_url: str) -> None:
    """Odd but valid IDs are asked for exactly; none can reach another path on the host."""
    ids = ["x;y=z", "..a", "a:b@c", 'quote"d', "semi;colon", "{curly}"]
    for task_id in ids:
        api.simulator.script(task_id, [DONE])
    with make_tracker(api.url, database_url, api.token) as tracker:
        tracker.add(ids)
        run_until_done(tracker)
        reasons = {task.task_id: task.finish_reason for task in tracker.tasks()}
    assert reasons == dict.fromkeys(ids, "completed")
    assert {task_id: api.simulator.polls(task_id) for task_id in ids} == dict.fromkeys(ids, 1)


async def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_poll_after_ms_is_respected(api: API, database_url: str) -> None:
    """openai-poll-after-ms longer than the interval delays the next poll accordingly."""
    slow_down = Reply(video={"status": "queued"}, headers={"openai-poll-after-ms": "1200"})
    video = api.simulator.script("video_paced", [slow_down, DONE])
    with make_tracker(api.url, database_url, api.token) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        history = tracker.history(video)
    assert gaps(history)[0] >= 1.2
    assert json.loads(json.dumps(history[0].body))["status"] == "queued"


def test_answers_with_characters_no_column_can_hold_are_stored_cleaned(
    api: API, database_url: str
) -> None:
    """NUL and lone surrogates sent as escapes, and NaN: stored or refused, never a stall."""
    odd = Reply(raw=b'{"status": "in\\u0000prog\\ud800ress", "model": "m\\udfff"}')
    nan = Reply(raw=b'{"status": "queued", "progress": NaN}')
    video = api.simulator.script("video_odd_chars", [odd, nan, DONE])
    healthy = api.simulator.script("video_healthy", [RUNNING, RUNNING, DONE])
    with make_tracker(api.url, database_url, api.token) as tracker:
        tracker.add([video, healthy])
        run_until_done(tracker)
        history = tracker.history(video)
        reasons = {task.task_id: task.finish_reason for task in tracker.tasks()}
    assert reasons == {video: "completed", healthy: "completed"}
    assert history[0].status == "in\ufffdprog\ufffdress"
    assert history[1].error["type"] == "invalid_json"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A file system of its own, 8 MB, to fill up (a tmpfs: mounting needs root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Write until the file system is full; the filler, to remove for the room back."""
    filler = disk / "filler"
    # Unbuffered, so that closing it has nothing left to write (that write would fail too).
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as out:
        while True:
            out.write(b"\0" * 65536)
    return filler


def test_a_stop_while_the_disk_is_full_ends_as_any_stop(
    api: API, small_disk: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk under an SQLite database full: the daemon keeps its results and goes on, and
    stopping it then ends as any stop does, without an error, even when giving its claims back
    fails too (whether that write finds room in SQLite's log is chance: it is made to fail
    here), saying so; with room again, a restart polls those tasks again."""
    videos = [api.simulator.add_video(f"video_full_{i}", steps=1000) for i in range(20)]
    caplog.set_level(logging.INFO)
    database_url = f"sqlite:///{small_disk / 'tracker.db'}"
    with make_tracker(api.url, database_url, api.token) as tracker:
        tracker.add(videos)
        leases = tracker.database.leases

        def no_room(owners: object) -> None:
            raise OperationalError(
                "UPDATE tasks", {}, sqlite3.OperationalError("database or disk is full")
            )

        async def scenario() -> Path:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            while len(tracker.history(videos[0])) < 2:
                await asyncio.sleep(0.05)
            filler = await asyncio.to_thread(fill, small_disk)
            while "database or disk is full" not in caplog.text:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # more polls, none of them written
            monkeypatch.setattr(leases, "release_owners", no_room)
            stop.set()
            await daemon  # no exception: a stop that ends well
            monkeypatch.undo()
            return filler

        filler = asyncio.run(asyncio.wait_for(scenario(), 60))
        polls = len(tracker.history(videos[0]))
        filler.unlink()
        assert asyncio.run(asyncio.wait_for(_one_more_poll(tracker, videos[0], polls), 30))
    assert "giving the claimed tasks back failed (database or disk is full)" in caplog.text
    assert "stopped after" in caplog.text


async def _one_more_poll(tracker: Tracker, video: str, polls: int) -> bool:
    stop = asyncio.Event()
    daemon = asyncio.create_task(tracker.run_async(stop=stop))
    while len(tracker.history(video)) <= polls:
        await asyncio.sleep(0.05)
    stop.set()
    await daemon
    return True
