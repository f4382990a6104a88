"""Process faults with the real command: signals, kill -9, a locked database, two daemons."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import API
from tracker.simulator import Reply

TRACKER = str(Path(sys.executable).with_name("tracker"))
RUNNING = Reply(video={"status": "in_progress", "progress": 50})
DONE = Reply(video={"status": "completed", "progress": 100})


def environment(api: API, workdir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TRACKER_DATABASE_URL": f"sqlite:///{workdir / 'tracker.db'}",
        "TRACKER_API_BASE": api.url,
        "TRACKER_API_TOKEN": api.token,
        "TRACKER_POLL_INTERVAL": "0.1",
        **extra,
    }


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TRACKER, "run", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def add(env: dict[str, str], *task_ids: str) -> None:
    subprocess.run([TRACKER, "add", *task_ids], env=env, check=True, capture_output=True)


def wait_until(
    condition: Callable[[], bool], process: subprocess.Popen[str] | None = None, timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        if process is not None:
            assert process.poll() is None, process.communicate()
        time.sleep(0.05)


def query(workdir: Path, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(workdir / "tracker.db")
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def snapshot_count(workdir: Path, task_id: str | None = None) -> int:
    where = f" WHERE task_id = '{task_id}'" if task_id else ""
    return int(query(workdir, f"SELECT COUNT(*) FROM snapshots{where}")[0][0])  # type: ignore[call-overload]


def test_sigterm_writes_the_polls_in_flight_before_exiting(api: API, tmp_path: Path) -> None:
    """A request answered during shutdown is written; the exit is 0 and within 10 seconds."""
    video = api.simulator.script(
        "video_inflight", [RUNNING, RUNNING, Reply(video={"status": "in_progress"}, delay=2), DONE]
    )
    env = environment(api, tmp_path)
    add(env, video)
    daemon = start(env)
    wait_until(lambda: api.simulator.polls(video) >= 3, daemon)
    sent = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    _out, err = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, err
    assert time.monotonic() - sent < 10
    assert snapshot_count(tmp_path, video) == 3 == api.simulator.polls(video)
    assert query(tmp_path, "SELECT lease_owner FROM tasks") == [(None,)]


def test_sigterm_exits_in_time_even_when_a_request_hangs(api: API, tmp_path: Path) -> None:
    """A request that would take 20 s is abandoned: exit 0 within 10 s, lease given back."""
    video = api.simulator.script("video_hang", [RUNNING, Reply(video={}, delay=20)])
    env = environment(api, tmp_path, TRACKER_REQUEST_TIMEOUT="30")
    add(env, video)
    daemon = start(env)
    wait_until(lambda: api.simulator.polls(video) >= 2, daemon)
    sent = time.monotonic()
    daemon.send_signal(signal.SIGINT)
    _out, err = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, err
    assert time.monotonic() - sent < 10
    assert query(tmp_path, "SELECT lease_owner, finished FROM tasks") == [(None, 0)]


def test_kill_9_loses_nothing_written_and_a_restart_carries_on(api: API, tmp_path: Path) -> None:
    """After SIGKILL the file passes integrity_check, keeps every row, and a restart resumes
    at once (the dead daemon's leases are released, not waited out)."""
    ids = [api.simulator.add_video(f"video_k{i}", steps=40) for i in range(20)]
    env = environment(api, tmp_path)  # default request timeout: leases of a minute
    add(env, *ids)
    daemon = start(env)
    wait_until(lambda: snapshot_count(tmp_path) >= 150, daemon)
    written_before = snapshot_count(tmp_path)
    daemon.kill()
    daemon.wait(timeout=10)
    assert query(tmp_path, "PRAGMA integrity_check") == [("ok",)]
    assert snapshot_count(tmp_path) >= written_before
    held = query(tmp_path, "SELECT COUNT(*) FROM tasks WHERE lease_owner IS NOT NULL")[0][0]

    restarted_at = time.monotonic()
    polls_at_restart = sum(api.simulator.polls(task_id) for task_id in ids)
    resumed = start(env, "--until-done")
    wait_until(
        lambda: sum(api.simulator.polls(t) for t in ids) > polls_at_restart + len(ids), resumed
    )
    assert time.monotonic() - restarted_at < 10
    _out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    if held:
        assert "released the leases of 1 stopped daemons" in err
    assert query(tmp_path, "SELECT DISTINCT finish_reason FROM tasks") == [("completed",)]
    for task_id in ids:
        statuses = [
            row[0]
            for row in query(
                tmp_path, f"SELECT status FROM snapshots WHERE task_id = '{task_id}' ORDER BY id"
            )
        ]
        assert statuses[-1] == "completed"
        # Only the answers in memory at the kill can be missing, never a written row.
        assert api.simulator.polls(task_id) - 5 <= len(statuses) <= api.simulator.polls(task_id)


def test_a_database_locked_for_seconds_delays_writes_but_drops_none(
    api: API, tmp_path: Path
) -> None:
    """Another writer holds the SQLite lock past the busy timeout: the daemon keeps its results
    in memory, says so, and writes every one once the lock is gone."""
    ids = [api.simulator.add_video(f"video_l{i}", steps=200) for i in range(5)]
    env = environment(api, tmp_path)
    add(env, *ids)
    daemon = start(env)
    wait_until(lambda: snapshot_count(tmp_path) >= 20, daemon)
    blocker = sqlite3.connect(tmp_path / "tracker.db", isolation_level=None, timeout=10)
    blocker.execute("BEGIN IMMEDIATE")
    polls_when_locked = sum(api.simulator.polls(t) for t in ids)
    time.sleep(7)  # a real lock held by a real writer; no clock to inject across processes
    assert daemon.poll() is None
    blocker.execute("COMMIT")
    blocker.close()
    wait_until(lambda: snapshot_count(tmp_path) > polls_when_locked, daemon)
    daemon.send_signal(signal.SIGTERM)
    _out, err = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, err
    assert "results stay in memory" in err
    assert "writable again" in err
    assert snapshot_count(tmp_path) == sum(api.simulator.polls(t) for t in ids)


def test_two_daemons_on_one_sqlite_file_share_the_work(api: API, tmp_path: Path) -> None:
    """Two `tracker run` on one file: every task finished, none polled twice at once or
    twice within half an interval, one snapshot per poll, and both did part of the work."""
    interval = 0.3
    ids = [api.simulator.add_video(f"video_s{i}", steps=6) for i in range(30)]
    env = environment(api, tmp_path, TRACKER_POLL_INTERVAL=str(interval))
    add(env, *ids)
    daemons = [start(env, "--until-done") for _ in range(2)]
    logs = [daemon.communicate(timeout=120)[1] for daemon in daemons]
    assert [daemon.returncode for daemon in daemons] == [0, 0], logs
    assert api.simulator.overlaps == 0
    assert query(tmp_path, "SELECT DISTINCT finish_reason FROM tasks") == [("completed",)]
    for task_id in ids:
        times = [
            row[0]
            for row in query(
                tmp_path,
                f"SELECT (julianday(polled_at) - 2440587.5) * 86400.0 FROM snapshots "
                f"WHERE task_id = '{task_id}' ORDER BY polled_at",
            )
        ]
        assert len(times) == api.simulator.polls(task_id) == 8
        assert all(b - a >= interval / 2 for a, b in itertools.pairwise(times))  # type: ignore[operator]
    polls = [int(log.rsplit("stopped after ", 1)[1].split()[0]) for log in logs]
    assert sum(polls) == 30 * 8 and min(polls) > 0


def test_sigterm_while_claiming_thousands_leaves_no_lease_behind(api: API, tmp_path: Path) -> None:
    """Stopped in the middle of claiming and polling many tasks, the daemon gives every claim
    back: a restart anywhere can take them at once."""
    ids = [api.simulator.add_video(f"video_m{i}", steps=50) for i in range(2000)]
    env = environment(api, tmp_path, TRACKER_CONCURRENCY="64")
    add(env, *ids)
    for _ in range(3):
        daemon = start(env)
        wait_until(lambda: sum(api.simulator.requests.values()) > 300, daemon)
        before = sum(api.simulator.requests.values())
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=15)
        assert daemon.returncode == 0, err
        assert "Traceback" not in err
        assert query(tmp_path, "SELECT COUNT(*) FROM tasks WHERE lease_owner IS NOT NULL") == [(0,)]
        api.simulator.requests.clear()
        assert before > 0
    assert snapshot_count(tmp_path) > 900
