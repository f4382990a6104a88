"""Snapshots on PostgreSQL a partition a day (migration 0009) against one table (migration 0008):
what retention, reads and space cost at scale, and what the conversion of an existing database
costs.

    python benchmarks/partitions.py --postgres postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/partitions.py --postgres URL --snapshots 20000000
    python benchmarks/partitions.py --postgres URL --only convert --convert 1000000
    python benchmarks/partitions.py --smoke [--postgres URL]    # in seconds (the tests')

Two databases are made on the server and filled with --snapshots snapshots (COPY) of finished
tasks, 100 polls a task spread over --days days, each a typical video object: one at migration
0008 (one table), one at the head (partitions, each snapshot's `kept` as its writer decides it).
Then, on each:

- prune:   `Tracker.prune` of one day of polls (the oldest): rows deleted by the pruning rule on
           the one table, a day's partition dropped on the other;
- history: one task's history (`Reads.history`), 50 random tasks, median and max;
- page:    the overview's first page (`Reads.page`, 50 tasks; at the head only: it reads tasks,
           which later migrations change);
- space:   bytes a snapshot takes with its indexes (the table's, or every partition's, total);

and convert: a database at 0008 with --convert snapshots (5,000,000 unless given) brought to the
head (the copy into partitions), timed. --only runs some of the sections: table, partitions,
convert. The databases are dropped at the end. The poll rate before and after is
throughput.py's `postgres` section, run on each version of the code.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import psycopg
from results import RESULTS, check_figures, finish, options, parse
from results import report as reported
from scratch_database import postgres_database
from sqlalchemy import text

from tracker.core.models import TaskFilter
from tracker.daemon.retention import prune
from tracker.store import Database
from tracker.store.engine import create_engine

TRACKER = [sys.executable, "-m", "tracker"]
NOW = datetime.now(UTC).replace(microsecond=0)
POLLS_A_TASK = 100
BODY = (
    '{"id":"%s","object":"video","model":"sora-2","status":"%s","progress":%d,'
    '"created_at":1764000000,"size":"1280x720","seconds":"8","quality":"standard",'
    '"remixed_from_video_id":null,"error":null}'
)
report = partial(reported, width=70)


def migrate(url: str, revision: str = "head") -> float:
    from tracker.store import migrations

    engine = create_engine(url)
    began = time.perf_counter()
    try:
        migrations.upgrade(engine, revision)
    finally:
        engine.dispose()
    return time.perf_counter() - began


def fill(url: str, snapshots: int, days: int, partitioned: bool) -> list[str]:
    """``snapshots`` snapshots of finished tasks, POLLS_A_TASK a task, the oldest ``days`` days
    ago; the task IDs."""
    tasks = max(1, snapshots // POLLS_A_TASK)
    rng = random.Random(5)
    ids = [f"video_{rng.getrandbits(96):024x}" for _ in range(tasks)]
    start = NOW - timedelta(days=days)
    spacing = timedelta(days=days) / snapshots
    plain = url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(plain) as connection:
        with connection.cursor().copy(
            "COPY tasks (task_id, status, progress, finished, finish_reason, registered_at,"
            " next_poll_at, finished_at, poll_count) FROM STDIN"
        ) as copy:
            for task_id in ids:
                copy.write_row(
                    (
                        task_id,
                        "completed",
                        100,
                        True,
                        "completed",
                        start,
                        start,
                        start,
                        POLLS_A_TASK,
                    )
                )
        columns = "task_id, polled_at, http_status, status, progress, body, finished, latency_ms"
        if partitioned:
            columns += ", kept"
        with connection.cursor().copy(f"COPY snapshots ({columns}) FROM STDIN") as copy:
            for n in range(snapshots):
                task_id = ids[n % tasks]
                poll = n // tasks  # the tasks advance together, a poll at a time
                last = poll == POLLS_A_TASK - 1
                status = "queued" if poll < 10 else "completed" if last else "in_progress"
                row: list[object] = [
                    task_id,
                    start + n * spacing,
                    200,
                    status,
                    poll,
                    BODY % (task_id, status, poll),
                    last,
                    35.5,
                ]
                if partitioned:
                    row.append(poll in (0, 10, POLLS_A_TASK - 1))
                copy.write_row(row)
        connection.execute("ANALYZE")
    return ids


def timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def measure(label: str, url: str, ids: list[str], days: int) -> None:
    opened = Database(create_engine(url))  # as it is: not brought to the head
    try:
        rng = random.Random(9)
        reads = [timed(lambda: opened.reads.history(rng.choice(ids))) for _ in range(50)]
        report(
            "history",
            f"{label}: one task's history ({POLLS_A_TASK} snapshots), 50 tasks: median; max",
            f"{statistics.median(reads) * 1000:.1f} ms; {max(reads) * 1000:.1f} ms",
        )
        if opened.partitions.partitioned:  # the page reads tasks, which 0008 has older
            pages = [timed(lambda: opened.reads.page(TaskFilter(), 50)) for _ in range(20)]
            report(
                "page",
                f"{label}: the overview's first page (50 tasks): median; max",
                f"{statistics.median(pages) * 1000:.1f} ms; {max(pages) * 1000:.1f} ms",
            )
        with opened.engine.connect() as connection:
            size = connection.scalar(
                text(
                    "SELECT SUM(pg_total_relation_size(relid)) FROM pg_partition_tree('snapshots')"
                    if opened.partitions.partitioned
                    else "SELECT pg_total_relation_size('snapshots')"
                )
            )
            rows = connection.scalar(text("SELECT COUNT(*) FROM snapshots"))
        report("space", f"{label}: bytes a snapshot, with its indexes", f"{size / rows:,.0f} B")
        cutoff = NOW - timedelta(days=days - 1)
        took = timed(lambda: opened.retention.prune_batch(cutoff, None, 10**9, False))
        if not opened.partitions.partitioned:  # the rule deletes in batches: all of them
            took += timed(lambda: prune(opened.retention, cutoff))
        report("prune", f"{label}: prune the oldest day of polls", f"{took:.2f} s")
    finally:
        opened.close()


def main() -> None:
    parser = options(__doc__)
    parser.add_argument(
        "--postgres", metavar="URL", help="a PostgreSQL server to make databases on"
    )
    parser.add_argument("--snapshots", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument(
        "--convert", type=int, default=5_000_000, help="snapshots of the conversion section"
    )
    parser.add_argument(
        "--only",
        default="table,partitions,convert",
        help="comma-separated sections: table (0008), partitions (0009), convert; all unless given",
    )
    args = parse(parser)
    if args.smoke:
        args.snapshots, args.days, args.convert = 20_000, 3, 5_000
    if not args.postgres:
        print(
            "partitions: skipped: snapshots are in partitions on PostgreSQL only (--postgres URL)"
        )
        if args.smoke:
            check_figures([], RESULTS)
        return
    layouts = (("table", "one table (0008)", "0008"), ("partitions", "partitions (0009)", "head"))
    for layout, label, revision in layouts:
        if layout not in args.only.split(","):
            continue
        with postgres_database(args.postgres) as url:
            migrate(url, revision)
            if revision == "head":  # the days a daemon would have made as they came
                days_made = Database(create_engine(url))
                days_made.partitions.make_days_ahead(NOW - timedelta(days=args.days), args.days)
                days_made.close()
            began = time.perf_counter()
            print(f"{label}: filling {args.snapshots:,} snapshots …", flush=True)
            ids = fill(url, args.snapshots, args.days, revision == "head")
            print(f"  filled in {time.perf_counter() - began:.0f} s", flush=True)
            measure(label, url, ids, args.days)
    if "convert" in args.only.split(","):
        with postgres_database(args.postgres) as url:
            migrate(url, "0008")
            print(f"conversion: filling {args.convert:,} snapshots at 0008 …", flush=True)
            fill(url, args.convert, args.days, False)
            took = migrate(url)
            report("convert", f"migration 0009 on {args.convert:,} snapshots", f"{took:.1f} s")
    print(f"\n(the load average: {os.getloadavg()})")
    finish(args.smoke, ["history", "page", "space", "prune", "convert"])


if __name__ == "__main__":
    main()
