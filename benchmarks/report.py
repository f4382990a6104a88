"""A million tasks: what the report costs (`tracker report`, `GET /v1/report`, the Insights page)
on SQLite and on PostgreSQL, and whether both give the same rows.

    python benchmarks/report.py [--tasks 1000000] [--repeat 3] [--postgres URL]
    python benchmarks/report.py --smoke [--postgres URL]    # in seconds (the tests')

Both databases get the same tasks, registered evenly over the 30 days before now (as
benchmarks/million.py registers them), written the way the daemon leaves them: a model, a size,
a length and a provider each, the API's created_at for nine in ten, the first poll that saw the
video made, and for 90% a completion after a render of the model's length, 5% a failure (with
its failing snapshot, whose error the Insights page reads), 2% another ending; 3% are still
running. Then, on each database:

- query:   `Tracker.report` in this process, for each grouping, over the default window (the
           last 7 days, some 233,000 tasks of a million; fixed at the start, so that both
           databases see the same tasks) and over all 30 days: the best of --repeat runs, wall
           time (and this process's CPU time, which is SQLite's own);
- command: `tracker report --by model --json`, a process of its own, Python's start included,
           with its peak RSS;
- http:    `GET /v1/report?by=model` and the Insights page, on a server in this process;
- same:    the rows of every query compared between SQLite and PostgreSQL.

The load average is printed before and after: the machine is shared, and a figure taken while
it is busy is slower than the database's own cost.
"""

from __future__ import annotations

import json
import os
import platform
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from results import finish, options, parse, report
from scratch_database import postgres_database

from tracker import Tracker
from tracker.core.report import ReportRow
from tracker.settings import settings_from_keywords
from tracker.store import Database
from tracker.testing import RunningApp

TRACKER = [sys.executable, "-m", "tracker"]
NOW = datetime.now(UTC).replace(microsecond=0)
DAYS = 30
GROUPINGS = ["", "model", "model,size", "provider,label", "day", "hour"]
# The default window, fixed at the benchmark's start so that both databases see the same tasks.
WINDOWS = {
    "the last 7 days (the default)": NOW - timedelta(days=7),
    "all 30 days": NOW - timedelta(days=DAYS + 1),
}
MODELS = {"sora-2": 95.0, "sora-2-pro": 260.0, "veo-3": 150.0, "kling-2": 120.0}
REASONS = [
    ("moderation_blocked", "Your request was blocked by our moderation system."),
    ("internal_error", "The video could not be generated. Please try again."),
    ("invalid_request", "The reference image does not match the requested size."),
]
COLUMNS = (
    "task_id, label, status, progress, finished, finish_reason, registered_at, last_polled_at, "
    "next_poll_at, finished_at, poll_count, model, seconds, size, created_at, first_running_at, "
    "provider"
)
say = partial(report, width=70)


@dataclass(frozen=True)
class Row:
    """A row of tasks, and the error of its failing snapshot if it failed."""

    values: tuple[Any, ...]  # in COLUMNS' order; timestamps as aware datetimes
    error: dict[str, str] | None


def rows(count: int) -> Iterator[Row]:
    """``count`` tasks, the same ones on every call."""
    rng = random.Random(7)
    start = NOW - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / count
    for index in range(count):
        registered = start + index * step
        model = rng.choice(list(MODELS))
        created = registered - timedelta(seconds=rng.uniform(0, 3)) if rng.random() < 0.9 else None
        began = created or registered
        running: datetime | None = began + timedelta(seconds=rng.expovariate(1 / 25))
        render = timedelta(seconds=rng.lognormvariate(0, 0.35) * MODELS[model])
        fate = rng.random()
        reason: str | None = None
        status: str | None = "in_progress"
        finished_at: datetime | None = None
        error = None
        if fate < 0.90 and running is not None:
            reason, status, finished_at = "completed", "completed", running + render
        elif fate < 0.95 and running is not None:
            reason, status, finished_at = "failed", "failed", running + render / 3
            error = dict(zip(("code", "message"), rng.choice(REASONS), strict=True))
        elif fate < 0.97:
            reason, status = rng.choice(["not_found", "timed_out", "removed"]), None
            finished_at, running = registered + timedelta(minutes=5), None
        polled = finished_at or registered + timedelta(seconds=15)
        yield Row(
            (
                f"video_{int(registered.timestamp()):08x}{rng.getrandbits(96):024x}",
                "batch" if index % 10 == 0 else None,
                status,
                100 if reason == "completed" else 40,
                reason is not None,
                reason,
                registered,
                polled,
                polled,
                finished_at,
                rng.randint(5, 40),
                model,
                rng.choice(["4", "8", "12"]),
                rng.choice(["1280x720", "720x1280", "1792x1024"]),
                created,
                running,
                "default" if index % 3 else "relay",
            ),
            error,
        )


def sqlite_text(value: Any) -> Any:
    """A value as tracker stores it in SQLite: timestamps as naive UTC text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")
    if isinstance(value, bool):
        return int(value)
    return value


def snapshot(row: Row) -> tuple[Any, ...]:
    """The failing snapshot of a failed task: its last, with the API's error."""
    return (row.values[0], row.values[9], 200, "failed", json.dumps(row.error), True)


def fill_sqlite(url: str, count: int) -> None:
    subprocess.run([*TRACKER, "--db", url, "db", "upgrade"], check=True, capture_output=True)
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    connection.execute("BEGIN")
    marks = ", ".join("?" * len(COLUMNS.split(",")))
    failed: list[tuple[Any, ...]] = []
    batch: list[tuple[Any, ...]] = []
    for row in rows(count):
        batch.append(tuple(sqlite_text(value) for value in row.values))
        if row.error is not None:
            failed.append(tuple(sqlite_text(value) for value in snapshot(row)))
        if len(batch) == 50_000:
            connection.executemany(f"INSERT INTO tasks ({COLUMNS}) VALUES ({marks})", batch)
            batch.clear()
    connection.executemany(f"INSERT INTO tasks ({COLUMNS}) VALUES ({marks})", batch)
    connection.executemany(
        "INSERT INTO snapshots (task_id, polled_at, http_status, status, error, finished)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        failed,
    )
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def fill_postgres(url: str, count: int) -> None:
    import psycopg

    subprocess.run([*TRACKER, "--db", url, "db", "upgrade"], check=True, capture_output=True)
    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as connection:
        failed: list[tuple[Any, ...]] = []
        with connection.cursor().copy(f"COPY tasks ({COLUMNS}) FROM STDIN") as copy:
            for row in rows(count):
                copy.write_row(row.values)
                if row.error is not None:
                    failed.append(snapshot(row))
        columns = "task_id, polled_at, http_status, status, error, finished"
        with connection.cursor().copy(f"COPY snapshots ({columns}) FROM STDIN") as copy:
            for values in failed:
                copy.write_row(values)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")


def best(repeat: int, work: Any) -> tuple[float, float, Any]:
    """The fastest of ``repeat`` runs of ``work()``: wall seconds, CPU seconds, its result."""
    timings = []
    result = None
    for _ in range(repeat):
        began, cpu = time.perf_counter(), time.process_time()
        result = work()
        timings.append((time.perf_counter() - began, time.process_time() - cpu))
    wall, cpu = min(timings)
    return wall, cpu, result


def measure_queries(name: str, url: str, repeat: int) -> dict[tuple[str, str], list[ReportRow]]:
    answers: dict[tuple[str, str], list[ReportRow]] = {}
    with Tracker(database_url=url, read_only=True) as tracker:
        tracker.report()  # connect and warm the cache, as a running system is
        for window, since in WINDOWS.items():
            for by in GROUPINGS:
                wall, cpu, rows_ = best(repeat, partial(tracker.report, since=since, by=by))
                answers[(window, by)] = rows_
                tasks = sum(row.tasks for row in rows_)
                say(
                    name,
                    f"`Tracker.report`, {window}, by {by or '(nothing)'}: {tasks:,} tasks, "
                    f"{len(rows_)} rows",
                    f"{wall:.2f} s (CPU here {cpu:.2f} s)",
                )
    return answers


def measure_command(name: str, url: str) -> None:
    """Its time, and its peak RSS as /usr/bin/time sees it (a child forked from this process
    would start at this process's size)."""
    timings = []
    peak = 0
    for _ in range(3):
        began = time.perf_counter()
        command = [*TRACKER, "--db", url, "report", "--by", "model", "--json"]
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", *command],
            capture_output=True,
            text=True,
            check=True,
        )
        timings.append(time.perf_counter() - began)
        peak = max(peak, int(done.stderr.split()[-1]))
        assert json.loads(done.stdout)
    say(
        name,
        "`tracker report --by model --json` (a process: start, imports, query, print)",
        f"{min(timings):.2f} s, peak RSS {peak / 1024:.0f} MB",
    )
    empty = [*TRACKER, "--db", url, "report", "--since", "2000-01-01", "--until", "2000-01-02"]
    wall, _, _ = best(3, partial(subprocess.run, empty, capture_output=True, check=True))
    say(
        name,
        "  the same over an empty window: what the process costs besides the query",
        f"{wall:.2f} s",
    )


def measure_http(name: str, url: str, repeat: int) -> None:
    database = Database.open_for_reading(url)
    settings = replace(settings_from_keywords(None, database_url=url), http_port=0)
    with RunningApp(settings, database) as base, httpx.Client(base_url=base, timeout=120) as http:
        for what, path in (
            ("`GET /v1/report?by=model`", "/v1/report?by=model"),
            ("the Insights page (7 days, by model)", "/insights"),
            ("the Insights page (30 days, by model)", "/insights?since=30d"),
        ):
            http.get(path).raise_for_status()
            wall, _, _ = best(repeat, partial(http.get, path))
            say(name, what, f"{wall:.2f} s")
    database.close()


def machine() -> str:
    model = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def main() -> None:
    parser = options(__doc__)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", metavar="URL", help="also on a database made on it")
    args = parse(parser)
    if args.smoke:
        args.tasks, args.repeat = 2_000, 1
    print(f"{machine()}; load average {os.getloadavg()}", flush=True)
    answers: dict[str, dict[tuple[str, str], list[ReportRow]]] = {}
    with tempfile.TemporaryDirectory(prefix="tracker-report-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'tracker.db'}"
        print(f"filling SQLite with {args.tasks:,} tasks …", flush=True)
        fill_sqlite(url, args.tasks)
        answers["SQLite"] = measure_queries("SQLite", url, args.repeat)
        measure_command("SQLite", url)
        measure_http("SQLite", url, args.repeat)
    if args.postgres:
        with postgres_database(args.postgres) as url:
            print(f"filling PostgreSQL with {args.tasks:,} tasks …", flush=True)
            fill_postgres(url, args.tasks)
            answers["PostgreSQL"] = measure_queries("PostgreSQL", url, args.repeat)
            measure_command("PostgreSQL", url)
            measure_http("PostgreSQL", url, args.repeat)
        same = answers["SQLite"] == answers["PostgreSQL"]
        say("same", "every query's rows, SQLite against PostgreSQL", "equal" if same else "DIFFER")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(this process's peak RSS: {own:.0f} MB; load average now {os.getloadavg()})")
    finish(args.smoke, answers.keys() | ({"same"} if args.postgres else set()), "database")


if __name__ == "__main__":
    main()
