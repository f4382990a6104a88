"""What the database part of a poll costs alone: the claim of due tasks and the write of their
polls, as the daemon makes them, in one process without HTTP, on SQLite and on PostgreSQL.

    python benchmarks/writes.py [--tasks 4000] [--batch 500] [--polls 20000] [--postgres URL]
    python benchmarks/writes.py --smoke [--postgres URL]    # in seconds (the tests')

Registers --tasks tasks, then claims them --batch at a time and writes a poll of each, every
one answered with its progress moved (the kind of write most polls make), until --polls polls
are written. Each claim and each write is timed by the CPU time of the thread that made it
(``time.thread_time``): the interpreter's and the driver's work a poll, which the
throughput benchmark's whole daemon mixes with HTTP and the machine's load. Given by the
batch's median and its lowest, which a machine shared with other work moves least. On a
PostgreSQL server on this machine, its CPU time a poll too (all its processes, as
throughput.py reads them: run nothing else on it meanwhile).

SQLite is then measured again beside another thread busy with Python, which lets the
interpreter's lock go every 50 µs as the saturated daemon's event loop does: timed by the
clock, since what the database thread pays there is the wait to take the lock back, at every
step of the driver that let it go (docs/performance.md). (PostgreSQL's statements are one
step each, and its server would share the busy thread's cores.) --smoke writes a few hundred
polls and checks that each part gave its figures. The figures are in docs/performance.md
(Where the time goes).
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

from results import finish, options, parse, report
from scratch_database import postgres_database
from throughput import local_postmaster, server_cpu_seconds

from tracker.core.models import FetchResult
from tracker.core.video import Video
from tracker.daemon.rules import Policy, decide
from tracker.store import Database

POLICY = Policy(interval=10, give_up_after=365 * 86400, request_timeout=5)
OWNER = "writes-benchmark"
CREATED = 1_796_500_000
TASKS_A_DAY = 10_000
BESIDE_BUSY = " beside a busy thread"


def answer(task_id: str, progress: int | None) -> FetchResult:
    """An answer moving the task's progress on by one, as a task being made shows, with the
    second the task was created in: tasks made over a day, each its own."""
    moved = min((progress or 0) + 1, 99)
    created = CREATED + int(task_id.removeprefix("video_")) * 86400 // TASKS_A_DAY
    document = {"object": "video", "status": "in_progress", "progress": moved}
    body = json.dumps({**document, "created_at": created})
    video = Video(
        "in_progress", moved, model="sora-2", created_at=datetime.fromtimestamp(created, UTC)
    )
    return FetchResult(200, 10.0, body, video, None)


@contextmanager
def another_thread_busy() -> Iterator[None]:
    """Python's work without end in another thread, which gives the interpreter's lock up for
    a moment every 50 µs, as the saturated daemon's event loop does for its sockets' system
    calls."""
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            until = time.perf_counter() + 50e-6
            while time.perf_counter() < until:
                pass
            time.sleep(0)

    busy = threading.Thread(target=work, daemon=True)
    busy.start()
    try:
        yield
    finally:
        stop.set()
        busy.join()


def measure(where: str, database_url: str, tasks: int, batch: int, polls: int) -> None:
    database = Database.open(database_url)
    database.tasks.add_tasks([f"video_{n:07}" for n in range(tasks)], None, datetime.now(UTC))
    postmaster = local_postmaster(database_url) if where == "postgres" else None
    rng = random.Random(5)
    # By the CPU time of the thread alone; by the clock beside a busy thread, where waiting
    # for the interpreter's lock is what the daemon's database thread pays.
    busy = where.endswith(BESIDE_BUSY)
    clock = time.perf_counter if busy else time.thread_time
    claims: list[float] = []
    writes: list[float] = []
    written = 0
    server_before = server_cpu_seconds(postmaster) if postmaster else 0.0
    with another_thread_busy() if busy else nullcontext():
        while written < polls:
            now = datetime.now(UTC)
            began = clock()
            # A lease to now: each task is free again for a later claim.
            claimed = database.polls.claim_due(OWNER, now, now, batch, include_not_due=True)
            claimed_in = clock() - began
            if not claimed:
                raise SystemExit(f"{where}: no unfinished task to claim")
            # Each poll at its own moment, as the daemon's clock gives them.
            records = [
                decide(
                    task,
                    answer(task.task_id, task.progress),
                    now + timedelta(microseconds=n),
                    POLICY,
                    rng,
                )
                for n, task in enumerate(claimed)
            ]
            began = clock()
            count = database.polls.record_polls(OWNER, records)
            if not count:
                raise SystemExit(f"{where}: a write kept none of its {len(records)} polls")
            writes.append((clock() - began) / count)
            claims.append(claimed_in / len(claimed))
            written += count
    server = server_cpu_seconds(postmaster) - server_before if postmaster else None
    database.close()
    for what, costs in (("claim", claims), ("write", writes)):
        report(
            where,
            f"{what} of {batch} tasks: "
            + ("the time a poll" if busy else "the thread's CPU a poll")
            + ", median / lowest",
            f"{statistics.median(costs) * 1e6:.1f} / {min(costs) * 1e6:.1f} µs",
        )
    if server is not None and not busy:
        report(
            where,
            "the server's CPU time a poll, claim and write",
            f"{server / written * 1e6:.0f} µs",
        )
    report(where, "polls written", f"{written:,}")


def main() -> None:
    parser = options(__doc__)
    parser.add_argument("--tasks", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--polls", type=int, default=20_000)
    parser.add_argument("--postgres", metavar="URL", help="a server to create a database on")
    args = parse(parser)
    if args.smoke:
        args.tasks, args.batch, args.polls = 200, 50, 400
    sections = []
    for section in ("sqlite", f"sqlite{BESIDE_BUSY}"):
        sections.append(section)
        with tempfile.TemporaryDirectory() as directory:
            print(f"{section}: claims and writes on a file")
            url = f"sqlite:///{Path(directory) / 'writes.db'}"
            measure(section, url, args.tasks, args.batch, args.polls)
    if args.postgres:
        sections.append("postgres")
        print("postgres: the same on a database of its own")
        with postgres_database(args.postgres) as url:
            measure("postgres", url, args.tasks, args.batch, args.polls)
    else:
        print("postgres: skipped (it needs --postgres URL)")
    finish(args.smoke, sections)


if __name__ == "__main__":
    main()
