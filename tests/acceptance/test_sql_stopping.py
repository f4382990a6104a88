"""A `tracker sql` query that runs too long, as users meet it: stopped at `--timeout` with one
line naming it (exit 1), or at once by Ctrl-C (exit 130, one line), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tests.acceptance.conftest import TRACKER, Run

RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"


def test_a_query_past_its_timeout_stops_with_one_line(tracker: Run, database_url: str) -> None:
    """`sql --timeout 1s` on a query that would run for ever: exit 1 after about a second,
    one line naming the timeout, nothing on standard output."""
    assert tracker("--db", database_url, "add", "video_a").returncode == 0
    started = time.monotonic()
    result = tracker("--db", database_url, "sql", "--timeout", "1s", RUNAWAY)
    assert 1 <= time.monotonic() - started < 10
    assert result.returncode == 1, result
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "tracker: error: stopped: the query ran past its timeout of 1s "
        "(tracker sql --timeout gives it longer)"
    ]


def test_a_timeout_that_is_not_a_duration_is_a_usage_error(tracker: Run) -> None:
    result = tracker("sql", "--timeout", "soon", "SELECT 1")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "tracker: error: --timeout 'soon': not a duration (use e.g. 15, 90s, 15m, 24h, 7d)"
    ]


def test_ctrl_c_stops_a_query_at_once(tracker: Run, database_url: str, workdir: Path) -> None:
    """SIGINT while a query runs (without a timeout of its own it would run a minute): the
    command ends within a second or two, exit 130, one line; on PostgreSQL the server stops
    the query too."""
    assert tracker("--db", database_url, "add", "video_a").returncode == 0
    start = _cpu_seconds_of("--db", database_url, "sql", "SELECT 1")
    process = subprocess.Popen(
        [TRACKER, "--db", database_url, "sql", RUNAWAY],
        cwd=workdir,
        env=os.environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_it_queries(process, database_url, start)
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert time.monotonic() - interrupted < 3
    assert process.returncode == 130
    assert (stdout, stderr.splitlines()) == ("", ["tracker: error: interrupted"])
    if database_url.startswith("postgresql"):
        assert _running_queries(database_url) == 0


def _wait_until_it_queries(process: subprocess.Popen[str], database_url: str, start: float) -> None:
    """Until the query is under way: PostgreSQL shows it running; on SQLite the process has
    spent half a second of CPU more than ``start``, what a quick query costs in all."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if database_url.startswith("postgresql"):
            if _running_queries(database_url):
                return
        elif _cpu_seconds(process.pid) > start + 0.5:
            return
        time.sleep(0.05)
    raise AssertionError("the query did not start")


def _running_queries(database_url: str) -> int:
    url = make_url(database_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database
    ) as connection:
        row = connection.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND query LIKE 'WITH RECURSIVE%%'"
        ).fetchone()
    return int(row[0]) if row else 0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds_of(*args: str) -> float:
    """The CPU time `tracker ARGS…` takes from start to end."""
    before = os.times()
    subprocess.run([TRACKER, *args], capture_output=True, check=True)
    after = os.times()
    return (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
