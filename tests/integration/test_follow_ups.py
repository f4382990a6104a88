"""After a task finishes: downloads, notifications, the API's webhooks; through the
real simulator, a real receiver over HTTP and a real database."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import socket
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API, make_tracker, run_until_done
from tests.doubles import NOTIFY_SECRET, Receiver
from tracker.core.follow_ups import NewDownload
from tracker.core.secrets import Secret, secret_key
from tracker.http.signing import verify
from tracker.simulator import Reply, content_of, send_webhook
from tracker.testing import RunningApp

DONE = Reply(video={"status": "completed", "progress": 100})


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    """The download directory (not made yet: the daemon makes it)."""
    return tmp_path / "videos"


def test_a_completed_video_is_saved_whole_with_its_hash(
    api: API, database_url: str, videos: Path
) -> None:
    """The files land with the right bytes under the task's name; path, size and sha256 are
    recorded; a failed task downloads nothing."""
    video = api.simulator.add_video("sora-2:task_ok", steps=1)
    failed = api.simulator.add_video("video_failed", steps=1, outcome="failed")
    with make_tracker(
        api, database_url, download_dir=str(videos), download_variants=("video", "thumbnail")
    ) as tracker:
        tracker.add([video, failed])
        run_until_done(tracker)
        rows = {row.variant: row for row in tracker.database.follow_ups.downloads(video)}
        assert tracker.database.follow_ups.downloads(failed) == []
    assert {variant: row.state for variant, row in rows.items()} == {
        "video": "done",
        "thumbnail": "done",
    }
    for variant, row in rows.items():
        expected = content_of(video, variant)
        assert row.path is not None
        saved = Path(row.path)
        assert saved.parent == videos
        assert saved.read_bytes() == expected
        assert (row.size_bytes, row.sha256) == (len(expected), hashlib.sha256(expected).hexdigest())
    assert Path(rows["video"].path or "").name.endswith(".mp4")
    assert Path(rows["thumbnail"].path or "").name.endswith(".thumbnail.webp")
    assert sorted(p.name for p in videos.iterdir() if p.name.startswith(".")) == []


def test_an_interrupted_download_leaves_no_file_and_is_retried(
    api: API, database_url: str, videos: Path
) -> None:
    """A transfer cut halfway, then a 500: no partial file ever takes the final name; the
    third attempt saves the right bytes."""
    video = api.simulator.add_video("video_flaky_download", steps=1)
    api.simulator.break_downloads(video, how="drop")
    api.simulator.break_downloads(video, how="500")
    with make_tracker(api, database_url, download_dir=str(videos)) as tracker:
        tracker.add([video])
        downloader_seen: list[set[str]] = []

        async def scenario() -> None:
            daemon = asyncio.create_task(tracker.run_async(until_done=True))
            while not daemon.done():
                if videos.exists():
                    downloader_seen.append({p.name for p in videos.iterdir()})
                await asyncio.sleep(0.01)
            await daemon

        asyncio.run(asyncio.wait_for(scenario(), 60))
        [row] = tracker.database.follow_ups.downloads(video)
    assert api.simulator.downloads[(video, "video")] == 3
    assert (row.state, row.attempts) == ("done", 3)
    final = Path(row.path or "")
    assert final.read_bytes() == content_of(video, "video")
    # Before success the final name never existed, partial or not.
    assert all(
        final.name not in names
        for names in downloader_seen[:-1]
        if any(n.endswith(".part") for n in names)
    )
    assert [p.name for p in videos.iterdir()] == [final.name]


def test_a_video_whose_assets_expired_is_recorded_so(
    api: API, database_url: str, videos: Path
) -> None:
    """Past expires_at, the download is recorded as expired and no request is made."""
    expired = Reply(
        video={"status": "completed", "progress": 100, "expires_at": int(time.time()) - 60}
    )
    video = api.simulator.script("video_expired", [expired])
    with make_tracker(api, database_url, download_dir=str(videos)) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        [row] = tracker.database.follow_ups.downloads(video)
    assert (row.state, row.path) == ("expired", None)
    assert api.simulator.downloads[(video, "video")] == 0
    assert not videos.exists() or list(videos.iterdir()) == []


def test_notifications_arrive_once_signed_with_the_same_id_on_retries(
    api: API, database_url: str, videos: Path
) -> None:
    """A receiver that fails twice still gets exactly one successful delivery per task; every
    attempt carries the same webhook-id and a valid signature; the event says where the video
    was saved."""
    receiver = Receiver(statuses=[500, 503])
    try:
        completed = api.simulator.add_video("video_notify_ok", steps=1)
        failed = api.simulator.add_video("video_notify_bad", steps=1, outcome="failed")
        with make_tracker(
            api,
            database_url,
            download_dir=str(videos),
            notify_url=receiver.url,
            notify_secret=Secret(NOTIFY_SECRET),
        ) as tracker:
            tracker.add([completed, failed])
            run_until_done(tracker)
            outbox = tracker.database.follow_ups.events()
    finally:
        receiver.close()
    deliveries = receiver.deliveries()
    assert len(deliveries) == 4  # two failed attempts, then one success per task
    by_task: dict[str, list[tuple[dict[str, str], dict[str, Any]]]] = {}
    for headers, event in deliveries:
        by_task.setdefault(event["task_id"], []).append((headers, event))
    assert set(by_task) == {completed, failed}
    for headers, _event in deliveries:
        body = json.dumps(_event, ensure_ascii=False).encode()
        verify(secret_key(NOTIFY_SECRET), headers, body, time.time())
    for attempts in by_task.values():
        assert len({headers["webhook-id"] for headers, _ in attempts}) == 1
    ok_event = by_task[completed][-1][1]
    assert ok_event["finish_reason"] == "completed"
    assert ok_event["status"] == "completed"
    assert ok_event["video"]["id"] == completed
    assert ok_event["download_path"] == str(videos / f"{completed}.mp4")
    bad_event = by_task[failed][-1][1]
    assert bad_event["finish_reason"] == "failed"
    assert bad_event["error"] == {
        "code": "moderation_blocked",
        "message": "The prompt was blocked.",
    }
    assert bad_event["download_path"] is None
    assert {row["state"] for row in outbox} == {"delivered"}
    assert sum(row["attempts"] for row in outbox) == 4


def test_a_restart_between_finishing_and_notifying_still_notifies(
    api: API, database_url: str
) -> None:
    """Finished while the receiver was unreachable and stopped: the next run delivers it."""
    video = api.simulator.add_video("video_restart_notify", steps=1)
    unreachable = "http://127.0.0.1:9/hooks"
    with make_tracker(api, database_url, notify_url=unreachable) as tracker:
        tracker.add([video])

        async def first_run() -> None:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            while not tracker.tasks()[0].finished:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # at least one failed delivery attempt
            stop.set()
            await daemon

        asyncio.run(asyncio.wait_for(first_run(), 30))
        [pending] = tracker.database.follow_ups.events()
        assert pending["state"] == "pending" and pending["attempts"] >= 1
    receiver = Receiver()
    try:
        with make_tracker(api, database_url, notify_url=receiver.url) as tracker:
            run_until_done(tracker)  # waits for the retry the back-off scheduled
            [delivered] = tracker.database.follow_ups.events()
    finally:
        receiver.close()
    assert delivered["state"] == "delivered"
    [(headers, event)] = receiver.deliveries()
    assert headers["webhook-id"] == pending["event_id"]
    assert event["task_id"] == video


def test_on_finish_runs_a_command_with_the_event_and_without_secrets(
    api: API, database_url: str, tmp_path: Path
) -> None:
    """--on-finish gets the event in TRACKER_* variables, never the API token."""
    video = api.simulator.add_video("video_command", steps=1)
    out = tmp_path / "events.jsonl"
    script = tmp_path / "record.py"
    script.write_text(
        "import json, os, sys\n"
        f"open({str(out)!r}, 'a').write(json.dumps({{k: v for k, v in os.environ.items() "
        "if k.startswith('TRACKER_')}) + '\\n')\n"
    )
    with make_tracker(api, database_url, on_finish=(sys.executable, str(script))) as tracker:
        tracker.add([video])
        run_until_done(tracker)
    [variables] = [json.loads(line) for line in out.read_text().splitlines()]
    assert variables["TRACKER_TASK_ID"] == video
    assert variables["TRACKER_FINISH_REASON"] == "completed"
    assert variables["TRACKER_STATUS"] == "completed"
    assert variables["TRACKER_PROGRESS"] == "100"
    assert json.loads(variables["TRACKER_VIDEO"])["id"] == video
    assert "TRACKER_API_TOKEN" not in variables
    assert api.token not in out.read_text()


def test_a_signed_webhook_makes_the_task_polled_at_once_and_a_forged_one_is_refused(
    api: API, database_url: str
) -> None:
    """video.completed from the API: polled well under a second later despite a 60 s
    interval. Bad signatures, stale timestamps and huge bodies: 4xx, nothing changed."""
    secret = "whsec_YS1sb25nLWVub3VnaC13ZWJob29rLXNlY3JldA=="
    video = api.simulator.script("video_pushed", [Reply(video={"status": "in_progress"}), DONE])
    with make_tracker(
        api, database_url, poll_interval=60.0, webhook_port=0, webhook_secret=Secret(secret)
    ) as tracker:
        tracker.add([video])

        async def scenario() -> None:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            while tracker.tasks()[0].poll_count < 1:  # the first poll, written
                await asyncio.sleep(0.02)
            while "--webhook-port" not in tracker.daemon.ports:
                await asyncio.sleep(0.02)
            url = f"http://127.0.0.1:{tracker.daemon.ports['--webhook-port']}/"
            before = tracker.tasks()[0].next_poll_at
            forged = await asyncio.to_thread(
                send_webhook, url, "whsec_d3Jvbmc=", "video.completed", video
            )
            stale = await asyncio.to_thread(
                send_webhook,
                url,
                secret,
                "video.completed",
                video,
                timestamp=int(time.time()) - 3600,
            )
            assert (forged, stale) == (401, 401)
            assert tracker.tasks()[0].next_poll_at == before
            assert api.simulator.polls(video) == 1
            sent = time.monotonic()
            assert (
                await asyncio.to_thread(send_webhook, url, secret, "video.completed", video) == 200
            )
            while not tracker.tasks()[0].finished:
                assert time.monotonic() - sent < 1.0
                await asyncio.sleep(0.02)
            stop.set()
            await daemon

        asyncio.run(asyncio.wait_for(scenario(), 30))
        [task] = tracker.tasks()
    assert task.finish_reason == "completed"
    assert api.simulator.polls(video) == 2


def test_a_receiver_that_never_answers_does_not_slow_polling(api: API, database_url: str) -> None:
    """Notifications to a black hole wait on their own; polls keep their pace."""
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(100)  # accepts connections, never reads or answers
    port = black_hole.getsockname()[1]
    interval = 0.2
    ids = [api.simulator.add_video(f"video_pace_{i}", steps=6) for i in range(10)]
    try:
        with make_tracker(
            api, database_url, poll_interval=interval, notify_url=f"http://127.0.0.1:{port}/hooks"
        ) as tracker:
            tracker.add(ids)

            async def scenario() -> None:
                stop = asyncio.Event()
                daemon = asyncio.create_task(tracker.run_async(stop=stop))
                while not all(task.finished for task in await asyncio.to_thread(tracker.tasks)):
                    await asyncio.sleep(0.05)
                stop.set()
                await daemon

            asyncio.run(asyncio.wait_for(scenario(), 60))
            histories = [tracker.history(task_id) for task_id in ids]
            outbox = tracker.database.follow_ups.events()
    finally:
        black_hole.close()
    gaps = [
        (b.polled_at - a.polled_at).total_seconds()
        for history in histories
        for a, b in itertools.pairwise(history)
    ]
    # Waiting on the black hole would hold a poll for the notification's 30 s timeout; a busy
    # machine can delay one by a few hundred milliseconds, which is not what this pins.
    assert statistics.median(gaps) <= interval * 1.1 + 0.05, gaps
    assert max(gaps) <= interval + 1.0, gaps
    assert len(outbox) == 10 and {row["state"] for row in outbox} == {"pending"}


def test_a_restart_finishes_the_downloads_left_pending(
    api: API, database_url: str, videos: Path
) -> None:
    """Stopped while a download waited for its retry: the next run saves the file."""
    video = api.simulator.add_video("video_resume_download", steps=1)
    api.simulator.break_downloads(video, how="500")
    with make_tracker(api, database_url, download_dir=str(videos)) as tracker:
        tracker.add([video])

        async def first_run() -> None:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            while api.simulator.downloads[(video, "video")] < 1:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # the failure is recorded
            stop.set()
            await daemon

        asyncio.run(asyncio.wait_for(first_run(), 30))
        [pending] = tracker.database.follow_ups.downloads(video)
        assert (pending.state, pending.attempts) == ("pending", 1)
        run_until_done(tracker)  # a new run: the retry comes due and succeeds
        [row] = tracker.database.follow_ups.downloads(video)
    assert row.state == "done"
    assert Path(row.path or "").read_bytes() == content_of(video, "video")


def test_download_on_demand_takes_only_its_task(api: API, database_url: str, videos: Path) -> None:
    """`tracker download A` saves A's files and leaves B's pending download to the daemons."""
    first = api.simulator.add_video("video_mine", steps=1)
    other = api.simulator.add_video("video_theirs", steps=1)
    with make_tracker(api, database_url, download_dir=str(videos)) as tracker:
        tracker.add([first, other])
        with make_tracker(api, database_url) as plain:  # finishes both, downloads nothing
            run_until_done(plain)
        now = datetime.now(UTC)
        tracker.database.follow_ups.schedule_downloads(
            other,
            [NewDownload("video", now + timedelta(days=1))],
            now,  # due at once
        )
        rows = tracker.download(first, directory=str(videos))
        others = tracker.database.follow_ups.downloads(other)
    assert [(row.task_id, row.state) for row in rows] == [(first, "done")]
    assert [(row.state, row.attempts) for row in others] == [("pending", 0)]
    assert api.simulator.downloads[(other, "video")] == 0


def test_download_on_demand_keeps_a_saved_file_and_fetches_a_missing_one(
    api: API, database_url: str, videos: Path
) -> None:
    """`tracker download ID` again: a file still saved keeps its row (nothing is fetched or
    forgotten); a deleted one is fetched anew."""
    video = api.simulator.add_video("video_again", steps=1)
    with make_tracker(api, database_url, download_dir=str(videos)) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        [saved] = tracker.database.follow_ups.downloads(video)
        [again] = tracker.download(video)
        fetched_once = api.simulator.downloads[(video, "video")]
        Path(saved.path or "").unlink()
        [anew] = tracker.download(video)
    assert again == saved
    assert fetched_once == 1
    assert api.simulator.downloads[(video, "video")] == 2
    assert (anew.state, anew.sha256) == ("done", saved.sha256)
    assert anew.downloaded_at is not None and saved.downloaded_at is not None
    assert anew.downloaded_at > saved.downloaded_at
    assert Path(anew.path or "").read_bytes() == content_of(video, "video")


def test_a_download_refused_for_good_is_recorded_as_failed(
    api: API, database_url: str, videos: Path
) -> None:
    """A 403 for the content is not retried until expiry: the row says failed, and why."""
    video = api.simulator.add_video("video_forbidden", steps=1)
    api.simulator.break_downloads(video, how="403")
    with make_tracker(api, database_url, download_dir=str(videos)) as tracker:
        tracker.add([video])
        run_until_done(tracker)
        [row] = tracker.database.follow_ups.downloads(video)
    assert (row.state, row.attempts) == ("failed", 1)
    assert row.last_error is not None and row.last_error.startswith("HTTP 403")


def test_a_command_that_outlives_its_timeout_is_killed_with_its_children(
    api: API, database_url: str, tmp_path: Path
) -> None:
    """--on-finish past its timeout is killed, children included, and retried later."""
    video = api.simulator.add_video("video_slow_command", steps=1)
    marker = tmp_path / "survived"
    command = ("sh", "-c", f"(sleep 3; touch {marker}) & sleep 30")
    with make_tracker(api, database_url, on_finish=command, on_finish_timeout=0.5) as tracker:
        tracker.add([video])

        async def scenario() -> None:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            began = time.monotonic()
            while not any(row["attempts"] for row in tracker.database.follow_ups.events()):
                assert time.monotonic() - began < 10, "the command was not killed in time"
                await asyncio.sleep(0.05)
            stop.set()
            await daemon

        asyncio.run(asyncio.wait_for(scenario(), 30))
        [event] = tracker.database.follow_ups.events()
    assert event["state"] == "pending"
    assert "killed" in event["last_error"]
    time.sleep(3.5)
    assert not marker.exists()  # the child the command started was killed too


def test_a_command_that_leaves_a_background_job_is_a_delivery(
    api: API, database_url: str, tmp_path: Path
) -> None:
    """--on-finish that starts a job in the background and exits 0 is delivered at once, not
    killed as too slow; the job, still holding the command's output, is left to run."""
    video = api.simulator.add_video("video_background_job", steps=1)
    marker = tmp_path / "background-job-done"
    command = ("sh", "-c", f"(sleep 2; touch {marker}) & exit 0")
    with make_tracker(api, database_url, on_finish=command, on_finish_timeout=1) as tracker:
        tracker.add([video])
        run_until_done(tracker, timeout=30)
        [event] = tracker.database.follow_ups.events()
    assert (event["state"], event["attempts"]) == ("delivered", 1)
    deadline = time.monotonic() + 10
    while not marker.exists():
        assert time.monotonic() < deadline, "the background job did not finish"
        time.sleep(0.1)


def declared_only(url: str, path: str, length: int) -> int:
    """The status answered to a request announcing a body of ``length`` bytes, none sent."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n\r\n".encode()
        )
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def test_the_receiver_refuses_huge_bodies_unread(api: API, sqlite_url: str) -> None:
    """A body over 64 KiB gets 413 before it is read; the receiver answers on the app's
    port, at / (where it was before) and at /webhooks."""
    secret = "whsec_YS1sb25nLWVub3VnaC13ZWJob29rLXNlY3JldA=="
    video = api.simulator.add_video("video_receiver", steps=50)
    with make_tracker(api, sqlite_url, webhook_secret=Secret(secret)) as tracker:
        tracker.add([video])
        settings = replace(tracker.settings, http_port=0)
        with RunningApp(settings, tracker.database) as url:
            huge = httpx.post(f"{url}/webhooks", content=b"x" * (65 * 1024))
            declared = declared_only(url, "/", 10**9)
            at_root = send_webhook(f"{url}/", secret, "video.completed", video)
            at_path = send_webhook(f"{url}/webhooks", secret, "video.failed", video)
    assert (huge.status_code, declared, at_root, at_path) == (413, 413, 200, 200)
    assert huge.headers["content-type"] == "application/problem+json"


def test_download_on_demand_whose_leases_cannot_be_given_back_still_returns(
    api: API, database_url: str, videos: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that refuses to take the download's leases back once the file is saved
    (a full disk, say) costs nothing but a logged error: the leases end by themselves, and
    the command answers with the saved file instead of failing on the way out."""
    from sqlalchemy.exc import OperationalError

    video = api.simulator.add_video("video_leases_kept", steps=1)
    with make_tracker(api, database_url, download_dir=str(videos)) as tracker:
        tracker.add([video])
        with make_tracker(api, database_url) as plain:  # finishes it, downloads nothing
            run_until_done(plain)

        def refuse(owners: object) -> None:
            raise OperationalError("UPDATE downloads", {}, Exception("disk full"))

        tracker.database.leases.release_owners = refuse  # type: ignore[method-assign]
        rows = tracker.download(video, directory=str(videos))
    assert [(row.task_id, row.state) for row in rows] == [(video, "done")]
    assert "giving the claimed tasks back failed" in caplog.text
