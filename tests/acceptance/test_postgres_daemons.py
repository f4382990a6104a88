"""Several daemons, as real processes, sharing one PostgreSQL database (docs/scaling.md)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from tests.conftest import API
from tracker.store.engine import create_engine

TRACKER = str(Path(sys.executable).with_name("tracker"))
INTERVAL = 0.3


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url)
    yield engine
    engine.dispose()


def environment(api: API, postgres_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TRACKER_DATABASE_URL": postgres_url,
        "TRACKER_API_BASE": api.url,
        "TRACKER_API_TOKEN": api.token,
        "TRACKER_POLL_INTERVAL": str(INTERVAL),
        "TRACKER_REQUEST_TIMEOUT": "2",
        **extra,
    }


def start(env: dict[str, str], count: int) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [TRACKER, "run", "--until-done"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def poll_times(engine: Engine) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for task_id, seconds in rows(
        engine, "SELECT task_id, EXTRACT(EPOCH FROM polled_at) FROM snapshots ORDER BY polled_at"
    ):
        times.setdefault(str(task_id), []).append(float(seconds))  # type: ignore[arg-type]
    return times


def register(api: API, env: dict[str, str], count: int, steps: int) -> list[str]:
    ids = [api.simulator.add_video(f"video_pg_{i}", steps=steps) for i in range(count)]
    subprocess.run([TRACKER, "add", *ids], env=env, check=True, capture_output=True)
    return ids


def assert_each_task_polled_alone(
    engine: Engine, api: API, ids: list[str], exact: bool = True
) -> None:
    times = poll_times(engine)
    assert api.simulator.overlaps == 0
    for task_id in ids:
        polls = times[task_id]
        assert all(b - a >= INTERVAL / 2 for a, b in itertools.pairwise(polls)), (task_id, polls)
        if exact:
            assert len(polls) == api.simulator.polls(task_id), task_id
        else:
            assert len(polls) <= api.simulator.polls(task_id), task_id


def test_three_daemons_share_sixty_tasks(api: API, postgres_url: str, engine: Engine) -> None:
    """Every task finished, none polled twice within half an interval, one snapshot per poll,
    and every daemon did part of the work."""
    env = environment(api, postgres_url)
    ids = register(api, env, 60, steps=5)
    daemons = start(env, 3)
    logs = [daemon.communicate(timeout=180)[1] for daemon in daemons]
    assert [daemon.returncode for daemon in daemons] == [0, 0, 0], logs
    assert rows(engine, "SELECT DISTINCT finish_reason FROM tasks") == [("completed",)]
    assert_each_task_polled_alone(engine, api, ids)
    polls = [int(log.rsplit("stopped after ", 1)[1].split()[0]) for log in logs]
    assert sum(polls) == 60 * 7 and min(polls) > 0, polls


def test_the_tasks_of_a_killed_daemon_are_finished_by_the_others(
    api: API, postgres_url: str, engine: Engine
) -> None:
    """kill -9 one of three: once its leases expire the other two take its tasks over."""
    env = environment(api, postgres_url)
    ids = register(api, env, 60, steps=30)
    daemons = start(env, 3)
    wait_until(lambda: sum(api.simulator.requests.values()) > 300)
    victim = daemons[0]
    victim.kill()
    victim.wait(timeout=10)
    logs = [daemon.communicate(timeout=240)[1] for daemon in daemons[1:]]
    assert [daemon.returncode for daemon in daemons[1:]] == [0, 0], logs
    assert rows(engine, "SELECT DISTINCT finish_reason FROM tasks") == [("completed",)]
    assert rows(engine, "SELECT COUNT(*) FROM tasks WHERE lease_owner IS NOT NULL") == [(0,)]
    assert_each_task_polled_alone(engine, api, ids, exact=False)


def test_terminated_connections_kill_no_daemon_and_lose_no_snapshot(
    api: API, postgres_url: str, engine: Engine
) -> None:
    """pg_terminate_backend on every daemon connection, twice: they reconnect, keep the results
    they polled meanwhile, and write them all."""
    # Polling resumes at once in three daemons after each round, and connections left idle
    # meanwhile are opened anew: the simulator, in this busy process, can leave a connection
    # unaccepted for a SYN's retry (3 s). That is a request that never reached the API, and
    # its error snapshot one more than the polls the API counts; a longer limit lets it through.
    env = environment(api, postgres_url, TRACKER_REQUEST_TIMEOUT="10")
    ids = register(api, env, 30, steps=25)
    daemons = start(env, 3)
    database = engine.url.database
    for round_ in range(2):
        wait_until(lambda r=round_: sum(api.simulator.requests.values()) > 150 * (r + 1))
        terminated = rows(
            engine,
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()",
        )
        assert terminated and all(ok for (ok,) in terminated)
        assert all(daemon.poll() is None for daemon in daemons)
    logs = [daemon.communicate(timeout=240)[1] for daemon in daemons]
    assert [daemon.returncode for daemon in daemons] == [0, 0, 0], logs
    assert rows(engine, "SELECT DISTINCT finish_reason FROM tasks") == [("completed",)]
    assert_each_task_polled_alone(engine, api, ids)


def test_sigterm_releases_the_leases_on_postgresql(
    api: API, postgres_url: str, engine: Engine
) -> None:
    """A stopped daemon gives its claims back at once, so another can go on without waiting."""
    env = environment(api, postgres_url)
    register(api, env, 200, steps=100)
    [daemon] = start(env, 1)
    wait_until(lambda: sum(api.simulator.requests.values()) > 200)
    daemon.send_signal(signal.SIGTERM)
    _out, err = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, err
    assert rows(engine, "SELECT COUNT(*) FROM tasks WHERE lease_owner IS NOT NULL") == [(0,)]
