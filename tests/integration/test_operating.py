"""Operating it for months: metrics and health, the live view, retention, recording
only changes; through the real simulator and real databases."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from tests.conftest import API, make_tracker
from tracker.cli.live import LiveView, view
from tracker.core.clock import SystemClock
from tracker.core.models import Stats, Task
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.retention import Retention
from tracker.daemon.running import Crew
from tracker.errors import DatabaseError
from tracker.simulator import Reply
from tracker.store import Database, migrations
from tracker.store.engine import create_engine

OLD = datetime(2020, 1, 1, tzinfo=UTC)


def metrics(port: int) -> dict[str, float]:
    """The samples of /metrics, keyed by name and labels."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def test_metrics_scraped_during_a_run_agree_with_the_database(api: API, database_url: str) -> None:
    """Polls by outcome, latency, task states and writes, read over HTTP, match the rows."""
    ids = [api.simulator.add_video(f"video_m{i}", steps=3) for i in range(8)]
    ids.append("video_never_there")
    with make_tracker(api, database_url, metrics_port=0, metrics_host="127.0.0.1") as tracker:
        tracker.add(ids)
        scraped: dict[str, float] = {}
        health: list[int] = []

        async def scenario() -> None:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            while not all(t.finished for t in await asyncio.to_thread(tracker.tasks)):
                await asyncio.sleep(0.05)
            port = tracker.daemon.ports["--metrics-port"]
            health.append(
                (await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/healthz")).status_code
            )
            deadline = time.monotonic() + 15
            while True:  # the gauges are refreshed every few seconds
                scraped.update(await asyncio.to_thread(metrics, port))
                if (
                    scraped.get("tracker_tasks{state=completed}") == 8
                    or time.monotonic() > deadline
                ):
                    break
                await asyncio.sleep(0.5)
            stop.set()
            await daemon

        asyncio.run(asyncio.wait_for(scenario(), 60))
        snapshots = sum(len(tracker.history(task_id)) for task_id in ids)
    assert health == [200]
    polls = {k: v for k, v in scraped.items() if k.startswith("tracker_polls_total")}
    assert sum(polls.values()) == snapshots == 8 * 5 + 3
    assert polls["tracker_polls_total{outcome=finished}"] == 8
    assert polls["tracker_polls_total{outcome=not_found}"] == 3
    assert polls["tracker_polls_total{outcome=ok}"] == 8 * 4
    assert scraped["tracker_poll_latency_seconds_count{}"] == snapshots
    assert scraped["tracker_tasks{state=completed}"] == 8
    assert scraped["tracker_tasks{state=not_found}"] == 1
    assert scraped["tracker_tasks{state=unfinished}"] == 0
    assert scraped["tracker_database_write_seconds_count{}"] >= 1
    assert scraped["tracker_database_up{}"] == 1
    assert scraped["tracker_api_paused_seconds{provider=default}"] == 0
    assert scraped["tracker_provider_unfinished_tasks{provider=default}"] == 0


def test_healthz_turns_503_while_the_database_is_locked(api: API, sqlite_url: str) -> None:
    """Claims that cannot be written make /healthz answer 503; it recovers with the database."""
    video = api.simulator.add_video("video_health", steps=10_000)
    with make_tracker(api, sqlite_url, metrics_port=0, metrics_host="127.0.0.1") as tracker:
        tracker.add([video])
        statuses: list[int] = []

        async def health() -> int:
            url = f"http://127.0.0.1:{tracker.daemon.ports['--metrics-port']}/healthz"
            return (await asyncio.to_thread(httpx.get, url)).status_code

        async def until(status: int, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while (answer := await health()) != status:
                assert time.monotonic() < deadline, f"still {answer}"
                await asyncio.sleep(0.2)
            statuses.append(answer)

        async def scenario() -> None:
            stop = asyncio.Event()
            daemon = asyncio.create_task(tracker.run_async(stop=stop))
            while "--metrics-port" not in tracker.daemon.ports:
                await asyncio.sleep(0.05)
            await until(200, 10)
            blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            try:
                await until(503, 20)
            finally:
                blocker.execute("COMMIT")
                blocker.close()
            await until(200, 20)
            stop.set()
            await daemon

        asyncio.run(asyncio.wait_for(scenario(), 90))
    assert statuses == [200, 503, 200]


def test_the_live_view_renders_tasks_and_counts() -> None:
    """One frame of `tracker watch`, rendered to text: bars, statuses, ages and the summary."""
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def task(task_id: str, progress: int | None, status: str | None, minutes: int) -> Task:
        return replace(
            Task.registered(task_id, None, now - timedelta(minutes=minutes)),
            status=status,
            progress=progress,
            last_polled_at=now - timedelta(seconds=3),
            next_poll_at=now,
            poll_count=7,
        )

    stats = Stats(
        at=now,
        unfinished=3,
        finished={"completed": 12, "failed": 2},
        due=1,
        held=2,
        oldest_unfinished=now - timedelta(minutes=95),
        snapshots_last_minute=240,
        errors_last_minute=3,
        polls_total=1000,
        downloads={"done": 12},
        notifications={},
    )
    tasks = [
        task("video_alpha", 45, "in_progress", 5),
        task("video_beta", None, None, 1),
        task("video_gamma", 90, "processing", 95),
    ]
    console = Console(record=True, width=120)
    console.print(view(stats, tasks, rate=12.5, now=now, limit=2))
    text = console.export_text()
    assert "tasks: 3 unfinished; 12 completed, 2 failed, 0 not_found" in text
    assert "polling 12.5/s" in text and "oldest unfinished task: 1h35m old" in text
    assert "downloads: 12 done" in text
    alpha = next(line for line in text.splitlines() if "video_alpha" in line)
    assert "45%" in alpha and "in_progress" in alpha and "5m00s" in alpha and "3s ago" in alpha
    assert "video_gamma" not in text and "… and 1 more unfinished tasks" in text


def test_the_live_view_fits_a_narrow_terminal_by_cutting_ids_in_the_middle() -> None:
    """At 80 columns a long ID is cut in the middle, keeping more of the end, which tells IDs
    of one kind apart; the bar narrows to leave it room, every other column stays whole."""
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    long_id = "video_68f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4"
    task = replace(
        Task.registered(long_id, None, now - timedelta(minutes=65)),
        status="in_progress",
        progress=45,
        last_polled_at=now - timedelta(seconds=3),
        poll_count=123,
        error_count=2,
    )
    console = Console(record=True, width=80)
    console.print(view(watch_stats(now, unfinished=1), [task], rate=None, now=now))
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines)
    header = next(line for line in lines if line.startswith("task "))
    row = next(line for line in lines if line.startswith("video"))
    assert header.split()[1:] == ["progress", "status", "age", "last", "poll", "polls", "errors"]
    assert row.split()[2:] == ["45%", "in_progress", "1h05m", "3s", "ago", "123", "2"]
    assert long_id not in row
    shortened = row.split()[0]
    assert shortened == "video…b0c1d2e3f4"


def test_the_live_view_says_when_the_database_cannot_be_read_and_carries_on() -> None:
    """`tracker watch` over a database that fails once: the failure is shown, the next read
    draws the tasks again."""
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    task = replace(Task.registered("video_watched", None, now), status="queued")
    answers: list[Any] = [DatabaseError("the database failed: database is locked")]
    answers.append((watch_stats(now, unfinished=1), [task]))

    def read() -> tuple[Stats, list[Task]]:
        if not answers:
            raise KeyboardInterrupt  # the person watching is done
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[no-any-return]

    console = Console(force_terminal=True, width=100, record=True, file=io.StringIO())
    with pytest.raises(KeyboardInterrupt):
        LiveView(read, 40, console=console).run_forever(0.001)
    text = console.export_text()
    assert "database is locked; trying again every 0.001s" in text
    assert text.index("database is locked") < text.index("video_watched")


def watch_stats(now: datetime, unfinished: int) -> Stats:
    return Stats(
        at=now,
        unfinished=unfinished,
        finished={},
        due=0,
        held=unfinished,
        oldest_unfinished=now,
        snapshots_last_minute=0,
        errors_last_minute=0,
        polls_total=0,
        downloads={},
        notifications={},
    )


@pytest.fixture
def history(sqlite_url: str) -> Database:
    """Tasks with crafted histories, everything old except one recent snapshot: the rows the
    pruning rule of SQLite deletes. (PostgreSQL drops whole days of the snapshots its writers
    did not keep: tests/integration/test_partitions.py.)"""
    engine = create_engine(sqlite_url)
    migrations.upgrade(engine)
    database = Database(engine)
    database.tasks.add_tasks(["done", "failed", "given_up", "running"], None, OLD)
    sequences = {
        "done": [
            "queued",
            "queued",
            "in_progress",
            "in_progress",
            None,
            None,
            "in_progress",
            "completed",
        ],
        "failed": ["queued", "queued", "queued", "failed"],
        # Given up (timed_out): no snapshot says finished; the last one seen is its end.
        "given_up": ["queued", "in_progress", "in_progress", "in_progress"],
        "running": ["queued", "queued", "in_progress", "in_progress"],
    }
    rows = []
    for task_id, statuses in sequences.items():
        for index, status in enumerate(statuses):
            terminal = task_id in ("done", "failed") and index == len(statuses) - 1
            rows.append(
                {
                    "task_id": task_id,
                    "polled_at": OLD + timedelta(minutes=index),
                    "status": status,
                    "finished": terminal,
                    "http_status": 200 if status else 503,
                }
            )
    rows.append(
        {
            "task_id": "running",
            "polled_at": datetime.now(UTC),
            "status": "in_progress",
            "finished": False,
            "http_status": 200,
        }
    )
    with engine.begin() as connection:
        from tracker.store.schema import snapshots, tasks

        connection.execute(snapshots.insert(), rows)
        reasons = {"done": "completed", "failed": "failed", "given_up": "timed_out"}
        for task_id, reason in reasons.items():
            connection.execute(
                tasks.update()
                .where(tasks.c.task_id == task_id)
                .values(
                    finished=True,
                    finish_reason=reason,
                    finished_at=OLD,
                    poll_count=len(sequences[task_id]),
                )
            )
    return database


def test_prune_keeps_first_terminal_and_every_status_change(
    history: Database,
) -> None:
    """Of finished tasks' old snapshots, only repetitions go (the last one seen stays, even
    with no finishing poll); unfinished tasks keep all."""
    from tracker.daemon.retention import prune

    cutoff = datetime.now(UTC) - timedelta(days=30)
    would = prune(history.retention, cutoff, dry_run=True)
    assert [len(history.reads.history(t)) for t in ("done", "failed")] == [8, 4]
    pruned = prune(history.retention, cutoff)
    assert pruned == would == 3 + 2 + 1
    tasks = ("done", "failed", "given_up", "running")
    kept = {t: [s.status for s in history.reads.history(t)] for t in tasks}
    assert kept == {
        "done": ["queued", "in_progress", None, "in_progress", "completed"],
        "failed": ["queued", "failed"],
        "given_up": ["queued", "in_progress", "in_progress"],
        "running": ["queued", "queued", "in_progress", "in_progress", "in_progress"],
    }
    assert prune(history.retention, cutoff) == 0


def test_a_prune_batch_reads_about_as_many_snapshots_as_it_is_given(
    history: Database,
) -> None:
    """Batches take finished tasks while their polls fit the budget, at least one a batch,
    so a transaction stays short however long the histories."""
    cutoff = datetime.now(UTC) - timedelta(days=30)
    batches = []
    after = None
    while True:
        _count, after = history.retention.prune_batch(cutoff, after, 8, dry_run=True)
        if after is None:
            break
        batches.append(after)
    assert batches == ["done", "given_up"]  # done: 8 polls; failed (4) + given_up (4) = 8


def test_the_daemon_prunes_by_itself_with_retain(history: Database) -> None:
    """--retain runs the same pruning from the scheduler, in batches."""
    database = DatabaseThread()
    crew = Crew("test-daemon", database, SystemClock(), history.wakeups)
    retention = Retention(history.retention, 30 * 86400, crew)
    asyncio.run(retention.prune())
    database.close()
    assert retention.pruned == 6
    assert len(history.reads.history("done")) == 5


def test_recording_only_changes_keeps_what_changed_and_the_end(api: API, database_url: str) -> None:
    """--record changes: a snapshot for each new status, progress or error, and the last one;
    the task still counts every poll."""
    running = {"status": "in_progress"}
    script = [
        Reply(video={"status": "queued", "progress": 0}),
        Reply(video={"status": "queued", "progress": 0}),
        Reply(video={**running, "progress": 10}),
        Reply(video={**running, "progress": 10}),
        Reply(video={**running, "progress": 20}),
        Reply(status=500, raw=b"{}"),
        Reply(status=500, raw=b"{}"),
        Reply(video={**running, "progress": 20}),
        Reply(video={"status": "completed", "progress": 100}),
    ]
    video = api.simulator.script("video_changes", script)
    with make_tracker(api, database_url, record="changes", poll_interval=0.05) as tracker:
        tracker.add([video])
        asyncio.run(asyncio.wait_for(tracker.run_async(until_done=True), 60))
        history = tracker.history(video)
        [task] = tracker.tasks()
    assert [(s.http_status, s.status, s.progress) for s in history] == [
        (200, "queued", 0),
        (200, "in_progress", 10),
        (200, "in_progress", 20),
        (500, None, None),
        (200, "in_progress", 20),
        (200, "completed", 100),
    ]
    assert task.poll_count == api.simulator.polls(video) == 9
