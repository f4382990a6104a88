"""tracker.client against a real tracker server (uvicorn on 127.0.0.1) on real SQLite and
PostgreSQL, with a daemon polling the simulator where a task must finish (docs/client.md)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API, make_tracker
from tests.integration.test_http_api import wait_for_port, with_http
from tests.web import TOKEN, daemon_running
from tracker import Tracker
from tracker.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    FinishedEvent,
    FinishReason,
    InvalidRequest,
    NotFound,
    ResetEvent,
    SnapshotEvent,
    TaskDetail,
    Unauthorized,
    WaitTimeout,
)
from tracker.simulator.api import content_of
from tracker.testing import RunningApp


@dataclass
class Served:
    tracker: Tracker
    url: str
    client: Client


@contextmanager
def polling(api: API, database_url: str) -> Iterator[Served]:
    """A daemon polling the simulator and serving the API itself, and a client of it."""
    with make_tracker(api, database_url) as tracker:
        tracker.settings = with_http(tracker.settings)
        with daemon_running(tracker):
            url = wait_for_port(tracker)
            with Client(url, token=TOKEN) as client:
                yield Served(tracker, url, client)


@contextmanager
def serving(api: API, database_url: str) -> Iterator[Served]:
    """`tracker serve` alone (nothing polls), and a client of it."""
    with (
        make_tracker(api, database_url) as tracker,
        RunningApp(with_http(tracker.settings), tracker.database) as url,
        Client(url, token=TOKEN) as client,
    ):
        yield Served(tracker, url, client)


@pytest.fixture
def polled(api: API, database_url: str) -> Iterator[Served]:
    with polling(api, database_url) as running:
        yield running


@pytest.fixture
def served(api: API, database_url: str) -> Iterator[Served]:
    with serving(api, database_url) as running:
        yield running


def test_wait_returns_the_finished_task_whether_it_finishes_later_or_already_has(
    api: API, polled: Served
) -> None:
    """wait follows the task to its end and returns it typed; called again on the finished
    task it returns at once; a failure is told by its finish reason; the history pages."""
    tracker, client = polled.tracker, polled.client
    done = api.simulator.add_video("video_wait_done", steps=4)
    failed = api.simulator.add_video("video_wait_failed", steps=2, outcome="failed")
    added = client.add([done, failed], label="waits", metadata={"order": "A-17"})
    assert set(added.added) == {done, failed} and added.existing == ()
    task = client.wait(done, timeout=60)
    assert (task.status, task.progress, task.finished) == ("completed", 100, True)
    assert task.finish_reason is FinishReason.COMPLETED
    assert task.metadata == {"order": "A-17"} and task.label == "waits"
    assert isinstance(task.finished_at, datetime) and task.finished_at.tzinfo is not None
    assert task.downloads == () and task.notifications == ()
    started = time.monotonic()
    assert client.wait(done, timeout=10) == task  # already finished: read at once
    assert time.monotonic() - started < 2
    assert client.wait(failed, timeout=60).finish_reason is FinishReason.FAILED
    history = list(client.snapshots(done, page_size=2))
    assert [s.id for s in history] == [s.id for s in tracker.history(done)]
    assert len(history) > 2 and history[-1].finished and history[-1].status == "completed"
    assert added.existing == () and client.add([done]).existing == (done,)


def test_wait_times_out_with_a_typed_error(served: Served) -> None:
    """A task nobody polls does not finish: wait raises WaitTimeout (a TimeoutError) after
    about its timeout."""
    client = served.client
    client.add(["video_never"])
    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        client.wait("video_never", timeout=1.0)
    assert isinstance(raised.value, WaitTimeout) and raised.value.task_id == "video_never"
    assert 1.0 <= time.monotonic() - started < 3.0


def test_events_and_wait_ride_out_a_server_restart_missing_nothing_and_repeating_nothing(
    api: API, database_url: str
) -> None:
    """The server is stopped mid-stream while the daemon goes on polling, and another started
    on the same database and port some seconds later: the client reconnects by itself with
    its Last-Event-ID and gets every snapshot of its tasks once, in order, and each
    `finished`; a wait for a task that finished while no server was there returns it."""
    videos = [api.simulator.add_video(f"video_restart_{i}", steps=80) for i in range(3)]
    quick = api.simulator.add_video("video_restart_quick", steps=10)
    with make_tracker(api, database_url) as tracker, ExitStack() as first:
        settings = with_http(tracker.settings)
        url = first.enter_context(RunningApp(settings, tracker.database))
        port = int(url.rsplit(":", 1)[1])
        with Client(url, token=TOKEN) as client:
            client.add([*videos, quick])
        received: list[SnapshotEvent | FinishedEvent | ResetEvent] = []
        waited: list[TaskDetail] = []
        failure: list[BaseException] = []

        def follow() -> None:
            try:
                with Client(url, token=TOKEN) as client:
                    # "0": from the feed's start, so that the test sees every snapshot.
                    for event in client.events(task_ids=videos, last_event_id="0"):
                        received.append(event)
                        if sum(isinstance(e, FinishedEvent) for e in received) == len(videos):
                            return
            except BaseException as exc:
                failure.append(exc)

        def wait() -> None:
            try:
                with Client(url, token=TOKEN) as client:
                    waited.append(client.wait(quick, timeout=90))
            except BaseException as exc:
                failure.append(exc)

        threads = [threading.Thread(target=go, daemon=True) for go in (follow, wait)]
        with daemon_running(tracker):
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 30
            while len(received) < 10:
                assert time.monotonic() < deadline and not failure, failure
                time.sleep(0.05)
            first.close()
            before_restart = len(received)
            # The daemon writes on (and finishes the quick task) while no server is there,
            # past the clients' first try to reconnect.
            time.sleep(4.0)
            assert not waited and tracker.history(quick)[-1].finished
            with RunningApp(replace(settings, http_port=port), tracker.database):
                for thread in threads:
                    thread.join(90)
            assert not any(thread.is_alive() for thread in threads) and not failure, failure
        stored = [s.id for video in videos for s in tracker.history(video)]
    snapshots = [e.id for e in received if isinstance(e, SnapshotEvent)]
    assert 10 <= before_restart < len(received)
    assert len(snapshots) == len(set(snapshots)), "a snapshot came twice"
    assert sorted(snapshots) == sorted(stored), "a snapshot was missed"
    assert snapshots == sorted(snapshots), "out of order"
    finished = [e.task_id for e in received if isinstance(e, FinishedEvent)]
    assert sorted(finished) == sorted(videos)
    assert not any(isinstance(e, ResetEvent) for e in received)
    [task] = waited
    assert task.task_id == quick and task.finish_reason is FinishReason.COMPLETED


def test_a_resume_point_the_server_never_gave_is_told_as_a_reset(served: Served) -> None:
    """Last-Event-ID 999999999 (another database's): a ResetEvent saying where the stream now
    starts, then the live events after it."""
    client = served.client
    client.add(["video_after_reset"], metadata={"k": 1})
    events = client.events(last_event_id="999999999")
    reset = next(events)
    assert isinstance(reset, ResetEvent) and reset.last_event_id == reset.position
    assert "999999999" in reset.detail
    client.remove("video_after_reset")
    snapshot, finished = next(events), next(events)
    events.close()
    assert isinstance(snapshot, SnapshotEvent) and snapshot.finished
    assert snapshot.task_id == "video_after_reset" and snapshot.last_event_id == reset.position
    assert isinstance(finished, FinishedEvent) and finished.metadata == {"k": 1}
    assert finished.finish_reason is FinishReason.REMOVED
    assert finished.last_event_id is not None and finished.last_event_id != reset.position


def test_refusals_are_typed_errors_without_the_token(served: Served) -> None:
    """NotFound for an unknown task, Unauthorized for a bad token or none, InvalidRequest
    naming each bad ID (in the caller's list, past the server's 10,000 a call) and a bad
    Last-Event-ID, ConnectionFailed for nothing listening; no message quotes the token."""
    tracker, client = served.tracker, served.client
    for call in (
        lambda: client.task("video_nope"),
        lambda: client.remove("video_nope"),
        lambda: list(client.snapshots("video_nope")),
        lambda: client.wait("video_nope", timeout=10),
    ):
        with pytest.raises(NotFound) as not_found:
            call()
        assert not_found.value.status == 404 and "video_nope" in str(not_found.value)
    wrong = "wrong-token-0123456789abcdef"
    for token in (wrong, None):
        with Client(served.url, token=token) as stranger:
            with pytest.raises(Unauthorized) as refused:
                stranger.add(["video_x"])
            with pytest.raises(Unauthorized):
                next(stranger.events())
        assert wrong not in str(refused.value) and wrong not in repr(refused.value)
    with pytest.raises(InvalidRequest) as invalid:
        client.add(["video_ok", "bad id", "a/b"])
    assert [e.pointer for e in invalid.value.errors] == ["/ids/1", "/ids/2"]
    assert invalid.value.status == 422 and tracker.tasks() == []
    many = [f"video_{i:05d}" for i in range(10_003)]
    with pytest.raises(InvalidRequest) as late:
        client.add([*many, "c/d"])
    assert [e.pointer for e in late.value.errors] == ["/ids/10003"]
    with pytest.raises(InvalidRequest) as header:
        next(client.events(last_event_id="abc"))
    assert [e.parameter for e in header.value.errors] == ["Last-Event-ID"]
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    with Client(closed, token=TOKEN) as nowhere:
        for call in (lambda: nowhere.task("video_ok"), lambda: next(nowhere.events())):
            with pytest.raises(ConnectionFailed) as unreachable:
                call()
            assert TOKEN not in str(unreachable.value) and closed in str(unreachable.value)


def test_lists_go_past_one_page_and_past_one_call(served: Served) -> None:
    """add sends 20,001 IDs in three calls; tasks() reads every page, newest first, with the
    filters sent along."""
    client = served.client
    many = [f"video_many_{i:05d}" for i in range(20_001)]
    result = client.add(many, label="bulk")
    assert result.added == tuple(many) and result.existing == ()
    again = client.add([many[0], "video_new", many[-1]])
    assert again.added == ("video_new",) and again.existing == (many[0], many[-1])
    for index in range(12):
        client.add([f"video_p{index:02d}"], label="even" if index % 2 == 0 else "odd")
    paged = [task.task_id for task in client.tasks(prefix="video_p", page_size=5)]
    assert paged == [f"video_p{index:02d}" for index in reversed(range(12))]
    odd = [task.task_id for task in client.tasks(label="odd", page_size=2)]
    assert odd == [f"video_p{index:02d}" for index in (11, 9, 7, 5, 3, 1)]
    assert sum(1 for _ in client.tasks(label="bulk", finished=False)) == len(many)
    assert list(client.tasks(finished=True)) == []


def test_the_async_client_waits_follows_and_refuses(api: API, polled: Served) -> None:
    """AsyncClient: wait returns the finished task; events reports a reset and the events after
    it; an unknown task is NotFound; tasks() pages."""
    video = api.simulator.add_video("video_async", steps=3)
    slow = api.simulator.add_video("video_async_slow", steps=1000)

    async def main() -> None:
        async with AsyncClient(polled.url, token=TOKEN) as client:
            events = client.events(task_ids=[video], last_event_id="999999999")
            reset = await anext(events)
            assert isinstance(reset, ResetEvent)
            await client.add([video, slow], metadata={"via": "async"})
            task = await client.wait(video, timeout=60)
            assert task.finish_reason is FinishReason.COMPLETED and task.progress == 100
            assert task.metadata == {"via": "async"}
            seen = []
            while not seen or not isinstance(seen[-1], FinishedEvent):
                seen.append(await anext(events))
            await events.aclose()
            assert {e.task_id for e in seen} == {video}
            assert [e.status for e in seen if isinstance(e, SnapshotEvent)][-1] == "completed"
            with pytest.raises(NotFound):
                await client.task("video_nope")
            with pytest.raises(WaitTimeout):
                await client.wait(slow, timeout=0.01)
            listed = [task.task_id async for task in client.tasks(page_size=1)]
            assert sorted(listed) == sorted([video, slow])
            history = [s.id async for s in client.snapshots(video, page_size=2)]
            assert len(history) == len(seen) - 1

    asyncio.run(main())


def test_the_documented_example_creates_a_video_registers_it_and_waits_for_it(
    api: API, polled: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/client.md's first example, as written, with OpenAI's SDK (installed with the
    `bench` extra) creating the video on the simulator: it registers the video, waits for it
    and downloads it."""
    pytest.importorskip("openai")
    text = (Path(__file__).resolve().parents[2] / "docs" / "client.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("OPENAI_API_KEY", api.token)
    monkeypatch.setenv("OPENAI_BASE_URL", f"{api.url}/v1")
    monkeypatch.setenv("TRACKER_URL", polled.url)
    monkeypatch.setenv("TRACKER_TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {"__name__": "example"}
    exec(compile(example, "docs/client.md", "exec"), scope)
    video_id = scope["video"].id
    assert scope["task"].finish_reason is FinishReason.COMPLETED
    assert scope["task"].metadata == {"order": "A-17"}
    assert (tmp_path / "lighthouse.mp4").read_bytes() == content_of(video_id, "video")
