"""The lists of tasks sorted by each column (docs/http-api.md, GET /v1/tasks; the overview's
headers, docs/dashboard.md) with a million tasks stored, on SQLite and on PostgreSQL.

    python benchmarks/sorting.py [--tasks 1000000] [--pages 20] [--database PATH]
                                 [--postgres URL]
    python benchmarks/sorting.py --smoke [--postgres URL]    # in seconds (the tests')

Fills an SQLite file through million.py's ``fill`` (tasks registered over 30 days, 19 in 20
finished at progress 100, the rest in progress at 40: ties by the hundred thousand), and with
--postgres copies its tasks into a database created on that server (and dropped). Each is
served by `tracker serve`; `GET /v1/tasks?limit=50` is followed through ``next_cursor`` for
--pages pages in every order (each column, both ways), of every task and of the unfinished
ones, every page timed: with the indexes of migration 0012 (on ``last_polled_at`` and on
``progress``), and without them (dropped, as before it).

Each index is one more entry every poll that changes its column writes: the writes of polls
are timed too, as the daemon writes them (claims of 100 unfinished tasks, each answered with
its progress moved, so both indexes change), without the two indexes and with them, in turns.
--smoke runs it all on 2,000 tasks and checks that each part gave its figures. The figures
are in docs/performance.md (Sorting the overview).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
from http_api import AUTHORIZATION, TOKEN, load, ms, serving, spread, walk
from million import fill
from results import finish, options, parse, report
from scratch_database import postgres_database
from throughput import TRACKER

from tracker.core.models import FetchResult
from tracker.core.video import Video
from tracker.daemon.rules import Policy, decide
from tracker.store import Database
from tracker.store.engine import create_engine

SORTS = ("registered_at", "last_polled_at", "progress", "status")
FILTERS = {"every task": {}, "finished=false": {"finished": "false"}}
SORT_INDEXES = {
    "ix_tasks_last_polled_at_registered_at_task_id": "last_polled_at",
    "ix_tasks_progress_registered_at_task_id": "progress",
}
# Never timed out: the million registers its unfinished tasks over 30 days.
POLICY = Policy(interval=10, give_up_after=365 * 86400, request_timeout=5)
COLUMNS = (
    "task_id, label, status, progress, finished, finish_reason, registered_at, last_polled_at,"
    " next_poll_at, finished_at, poll_count"
)


def copied_to_postgres(database: Path, server: str) -> Iterator[str]:
    """The file's tasks in a database of their own on ``server``, analysed."""
    import psycopg

    with postgres_database(server) as url:
        subprocess.run([*TRACKER, "--db", url, "db", "upgrade"], check=True)
        plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
        source = sqlite3.connect(database)
        with psycopg.connect(plain, autocommit=True) as target:
            target.execute("SET TIME ZONE 'UTC'")  # SQLite's timestamps are UTC, unzoned
            with target.cursor().copy(f"COPY tasks ({COLUMNS}) FROM STDIN") as copy:
                for row in source.execute(f"SELECT {COLUMNS} FROM tasks"):
                    copy.write_row(
                        [bool(value) if i == 4 else value for i, value in enumerate(row)]
                    )
            target.execute(
                "INSERT INTO tallies (kind, key, delta) SELECT 'finished', finish_reason, COUNT(*)"
                " FROM tasks WHERE finished AND finish_reason IS NOT NULL GROUP BY finish_reason"
            )
            target.execute("ANALYZE tasks")
        source.close()
        yield url


def poll_writes(database_url: str, polls: int) -> float:
    """Milliseconds per poll written, as the daemon writes them."""
    database = Database.open(database_url)
    rng = random.Random(3)
    spent = 0.0
    written = 0
    while written < polls:
        now = datetime.now(UTC)
        # A lease to now: the task is free again for the next round's claim.
        claimed = database.polls.claim_due("sorting", now, now, 100, include_not_due=True)
        if not claimed:
            raise SystemExit("poll writes: no unfinished task to claim")
        records = [decide(task, moved(task.progress), now, POLICY, rng) for task in claimed]
        began = time.perf_counter()
        written += database.polls.record_polls("sorting", records)
        spent += time.perf_counter() - began
    database.close()
    return spent * 1000 / written


def moved(progress: int | None) -> FetchResult:
    status, now_at = "in_progress", min((progress or 0) + 1, 99)
    body = json.dumps({"object": "video", "status": status, "progress": now_at})
    return FetchResult(200, 10.0, body, Video(status, now_at), None)


def indexes(database_url: str, present: bool) -> None:
    """The indexes of migration 0012, made or dropped."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        for name, column in SORT_INDEXES.items():
            if present:
                connection.exec_driver_sql(
                    f"CREATE INDEX IF NOT EXISTS {name} ON tasks ({column}, registered_at, task_id)"
                )
            else:
                connection.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    engine.dispose()


def write_costs(where: str, database_url: str, polls: int, rounds: int) -> None:
    """Poll writes without the two indexes and with them, in turns."""
    costs: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(rounds):
        for present in (False, True):
            indexes(database_url, present)
            costs[present].append(poll_writes(database_url, polls))
    for present, times in costs.items():
        report(
            where,
            f"poll writes, {'with' if present else 'without'} the two indexes: {polls:,} a run",
            " / ".join(f"{cost:.3f}" for cost in times) + " ms a poll",
        )


def sorted_pages(where: str, database_url: str, pages: int) -> None:
    with (
        serving(database_url) as (url, _),
        httpx.Client(base_url=url, headers=AUTHORIZATION, timeout=120) as client,
    ):
        walk(client, {}, 1)  # the server's first request: its warm-up is not a page's cost
        for present in (True, False):
            indexes(database_url, present)
            for name, query in FILTERS.items():
                for sort in SORTS:
                    for order in ("desc", "asc"):
                        times, _ = walk(client, {**query, "sort": sort, "order": order}, pages)
                        report(
                            where,
                            f"{name}, sort={sort}&order={order}, "
                            f"{'with' if present else 'without'} 0012: {len(times)} pages",
                            f"first {ms(times[0])}; p50 / p99 / max {spread(times)}",
                        )
    indexes(database_url, True)


def main() -> None:
    parser = options(__doc__)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=20, help="pages followed in each order")
    parser.add_argument("--polls", type=int, default=5000, help="poll writes timed in each run")
    parser.add_argument("--rounds", type=int, default=3, help="runs with and without the indexes")
    parser.add_argument("--database", type=Path, help="keep (or reuse) the million's file here")
    parser.add_argument("--postgres", help="a PostgreSQL server: the tasks copied onto it too")
    args = parse(parser)
    if args.smoke:
        args.tasks, args.pages, args.polls, args.rounds = 2_000, 3, 200, 1
    os.environ["TRACKER_SERVER_TOKENS"] = TOKEN
    print(f"tracker sorting benchmark: {os.cpu_count()} CPUs, load average {load()}")
    sections = ["sqlite"]
    with tempfile.TemporaryDirectory(prefix="tracker-sorting-") as scratch:
        million = args.database or Path(scratch) / "million.db"
        if not million.exists():
            print(f"filling {million} with {args.tasks:,} tasks …", flush=True)
            fill(million, args.tasks, 0)
        print(f"sqlite (load average {load()})")
        sorted_pages("sqlite", f"sqlite:///{million}", args.pages)
        write_costs("sqlite", f"sqlite:///{million}", args.polls, args.rounds)
        if args.postgres:
            sections.append("postgresql")
            for url in copied_to_postgres(million, args.postgres):
                print(f"postgresql (load average {load()})")
                sorted_pages("postgresql", url, args.pages)
                write_costs("postgresql", url, args.polls, args.rounds)
        else:
            print("postgresql: skipped (it needs --postgres URL)")
    print(f"\n(load average at the end: {load()})")
    finish(args.smoke, sections, "database")


if __name__ == "__main__":
    main()
