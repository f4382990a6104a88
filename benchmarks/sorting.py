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
ones, every page timed. No sort but the registration has an index of its own (an index on a
column every poll writes costs every poll): a page sorted so reads every task the filter
selects, however deep it is. --smoke runs it all on 2,000 tasks and checks that each part gave
its figures. The figures are in docs/performance.md (Sorting the overview).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
from http_api import AUTHORIZATION, TOKEN, load, ms, serving, spread, walk
from million import fill
from scratch_database import postgres_database
from throughput import RESULTS, SMOKE_HELP, TRACKER, check_figures, report

SORTS = ("registered_at", "last_polled_at", "progress", "status")
FILTERS = {"every task": {}, "finished=false": {"finished": "false"}}
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


def sorted_pages(where: str, database_url: str, pages: int) -> None:
    with (
        serving(database_url) as (url, _),
        httpx.Client(base_url=url, headers=AUTHORIZATION, timeout=120) as client,
    ):
        walk(client, {}, 1)  # the server's first request: its warm-up is not a page's cost
        for name, query in FILTERS.items():
            for sort in SORTS:
                for order in ("desc", "asc"):
                    times, _ = walk(client, {**query, "sort": sort, "order": order}, pages)
                    report(
                        where,
                        f"{name}, sort={sort}&order={order}: {len(times)} pages of 100",
                        f"first {ms(times[0])}; p50 / p99 / max {spread(times)}",
                    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=20, help="pages followed in each order")
    parser.add_argument("--database", type=Path, help="keep (or reuse) the million's file here")
    parser.add_argument("--postgres", help="a PostgreSQL server: the tasks copied onto it too")
    parser.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    args = parser.parse_args()
    if args.smoke:
        args.tasks, args.pages = 2_000, 3
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
        if args.postgres:
            sections.append("postgresql")
            for url in copied_to_postgres(million, args.postgres):
                print(f"postgresql (load average {load()})")
                sorted_pages("postgresql", url, args.pages)
        else:
            print("postgresql: skipped (it needs --postgres URL)")
    print(f"\n(load average at the end: {load()})")
    print("\n| database | measure | result |\n|---|---|---|")
    for section, what, value in RESULTS:
        print(f"| {section} | {what} | {value} |")
    if args.smoke:
        check_figures(sections, RESULTS)


if __name__ == "__main__":
    main()
