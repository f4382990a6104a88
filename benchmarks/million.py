"""A million tasks: what `list`, `add --file` and `history` cost in time and memory when the
tasks table and one task's history are large.

    python benchmarks/million.py [--tasks 1000000] [--snapshots 100000] [--postgres URL]
    python benchmarks/million.py --smoke [--postgres URL]    # in seconds (the tests')

An SQLite database is filled with --tasks tasks registered over 30 days (19 in 20 finished,
as finished tasks are never deleted) and one task with --snapshots snapshots of a typical
video object; the commands then run as users run them, each in a process of its own:

- list:    `tracker list --json` through a pipe read to the end (time to the first byte, total
           time), `list --limit 100`, and `list` on a terminal (the newest 50, counted);
- add:     `tracker add --file` with --tasks new IDs shaped like OpenAI's (a time prefix, then
           random hex) on top of the tasks already there, and again with IDs in random order;
           meanwhile another connection writes a row every 10 ms, as a daemon would, and its
           longest wait for the write lock is reported;
- metrics: the gauges `/metrics` reads, timed in this process, and `GET /metrics` of a
           `tracker serve` on the database, each read afresh;
- history: `tracker history ID --tail 10`, and `history ID --json` read to the end;
- refusal: `tracker add --file` with a 300 MB file of one line.

Peak memory is each command's own peak RSS (from wait4). With --postgres URL of a server, the
add is also measured on a database created on it (and dropped). --smoke runs every section with
a thousand tasks, a hundred snapshots and a 3 MB line, and checks that each gave its figures,
not what they are.
"""

from __future__ import annotations

import json
import os
import pty
import random
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from results import finish, options, parse
from results import report as reported
from scratch_database import postgres_database

TRACKER = [sys.executable, "-m", "tracker"]
NOW = datetime.now(UTC).replace(microsecond=0)
HISTORY_TASK = "video_with_a_long_history"
BODY = json.dumps(
    {
        "id": HISTORY_TASK,
        "object": "video",
        "model": "sora-2",
        "status": "in_progress",
        "progress": 42,
        "created_at": 1764000000,
        "size": "1280x720",
        "seconds": "8",
        "quality": "standard",
        "remixed_from_video_id": None,
        "error": None,
    }
)


report = partial(reported, width=66)


@dataclass
class Run:
    first_byte: float  # seconds from start to the first byte of output (nan: none)
    seconds: float
    peak_mb: float
    returncode: int
    output: bytes  # the first 64 KiB and the last 64 KiB are kept, no more


def measure(args: list[str], directory: Path, *, terminal: bool = False) -> Run:
    """Run `tracker ARGS…`, reading its standard output (a pipe, or a terminal) to the end.

    Linux starts a child's peak RSS at its parent's RSS when forked, so this process keeps
    itself small (its own peak is reported at the end) to leave the child's figure its own."""
    controller, terminal_side = pty.openpty() if terminal else (-1, -1)
    began = time.perf_counter()
    process = subprocess.Popen(
        [*TRACKER, *args],
        cwd=directory,
        stdout=terminal_side if terminal else subprocess.PIPE,
        stderr=subprocess.PIPE if not terminal else terminal_side,
    )
    if terminal:
        os.close(terminal_side)
        source = controller
    else:
        assert process.stdout is not None
        source = process.stdout.fileno()
    first_byte = float("nan")
    head = tail = b""
    while True:
        try:
            data = os.read(source, 1 << 16)
        except OSError:  # a terminal whose other side is closed
            data = b""
        if not data:
            break
        if first_byte != first_byte:
            first_byte = time.perf_counter() - began
        if len(head) < 1 << 16:
            head += data
        else:
            tail = (tail + data)[-(1 << 16) :]
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    if terminal:
        os.close(controller)
    else:
        assert process.stderr is not None and process.stdout is not None
        tail += process.stderr.read()
        process.stdout.close()
        process.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    return Run(first_byte, seconds, usage.ru_maxrss / 1024, code, head + tail)


def sqlite_text(moment: datetime) -> str:
    """How tracker stores a timestamp on SQLite (naive UTC, microseconds)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")


def fill(database: Path, tasks: int, snapshots: int) -> None:
    """``tasks`` tasks registered over 30 days, 19 in 20 finished, and one long history."""
    subprocess.run([*TRACKER, "--db", f"sqlite:///{database}", "db", "upgrade"], check=True)
    rng = random.Random(7)
    start = NOW - timedelta(days=30)
    step = timedelta(days=30) / tasks

    def rows() -> Iterator[tuple[object, ...]]:
        for i in range(tasks):
            registered = start + i * step
            prefix = f"{int(registered.timestamp()):08x}"
            task_id = f"video_{prefix}{rng.getrandbits(96):024x}"
            if rng.random() < 0.95:
                done = registered + timedelta(minutes=3)
                yield (
                    task_id,
                    "batch" if i % 10 == 0 else None,
                    "completed",
                    100,
                    1,
                    "completed",
                    sqlite_text(registered),
                    sqlite_text(done),
                    sqlite_text(done),
                    sqlite_text(done),
                    40,
                )
            else:
                polled = registered + timedelta(seconds=15)
                yield (
                    task_id,
                    None,
                    "in_progress",
                    40,
                    0,
                    None,
                    sqlite_text(registered),
                    sqlite_text(polled),
                    sqlite_text(polled + timedelta(seconds=15)),
                    None,
                    12,
                )

    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("BEGIN")
    connection.executemany(
        "INSERT INTO tasks (task_id, label, status, progress, finished, finish_reason,"
        " registered_at, last_polled_at, next_poll_at, finished_at, poll_count)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    registered = sqlite_text(NOW - timedelta(days=31))
    connection.execute(
        "INSERT INTO tasks (task_id, registered_at, next_poll_at, status)"
        " VALUES (?, ?, ?, 'in_progress')",
        (HISTORY_TASK, registered, registered),
    )
    polled = NOW - timedelta(days=31)
    connection.executemany(
        "INSERT INTO snapshots (task_id, polled_at, http_status, status, progress, body,"
        " finished, latency_ms) VALUES (?, ?, 200, 'in_progress', 42, ?, 0, 35.5)",
        (
            (HISTORY_TASK, sqlite_text(polled + timedelta(seconds=15 * i)), BODY)
            for i in range(snapshots)
        ),
    )
    # The counts kept as they change, as migration 0008 counts what was there.
    connection.execute(
        "INSERT INTO tallies (kind, key, delta) SELECT 'finished', finish_reason, COUNT(*)"
        " FROM tasks WHERE finished AND finish_reason IS NOT NULL GROUP BY finish_reason"
    )
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def new_ids(path: Path, count: int, shuffled: bool) -> None:
    """``count`` IDs shaped like OpenAI's video IDs (made over the last hour: a time prefix,
    then random hex), in the order they were made or in random order. Written as generated:
    this process stays small (see measure)."""
    rng = random.Random(11 if shuffled else 13)
    start = int(NOW.timestamp()) - 3600
    with path.open("w") as out:
        for first in range(0, count, 10_000):
            made = range(first, min(count, first + 10_000))
            seconds = (rng.randrange(3600) if shuffled else i * 3600 // count for i in made)
            out.write(
                "".join(f"video_{start + s:08x}{rng.getrandbits(96):024x}\n" for s in seconds)
            )


class WriteProbe:
    """Another connection writing a row every 10 ms, as a daemon does: its longest wait."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._stop = threading.Event()
        self.longest = 0.0
        self.writes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WriteProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self._database, isolation_level=None, timeout=30)
        while not self._stop.wait(0.01):
            began = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(
                "UPDATE tasks SET poll_count = poll_count + 1 WHERE task_id = ?", (HISTORY_TASK,)
            )
            connection.execute("COMMIT")
            self.longest = max(self.longest, time.perf_counter() - began)
            self.writes += 1
        connection.close()


def add(label: str, args: list[str], directory: Path, count: int, probe: WriteProbe | None) -> None:
    result = measure(args, directory)
    assert result.returncode == 0, result.output.decode(errors="replace")
    waited = f"; a concurrent write waited {probe.longest * 1000:.0f} ms at most" if probe else ""
    report(
        "add",
        f"`tracker add --file`, {count:,} new IDs ({label}): time; IDs/s",
        f"{result.seconds:.1f} s; {count / result.seconds:,.0f}/s{waited}",
    )
    report("add", f"  the same: peak RSS ({label})", f"{result.peak_mb:.0f} MB")


def metrics_section(database: Path, tasks: int) -> None:
    """What `/metrics` reads from the database: the gauges, read afresh each time (a scrape
    reads them at most every 2 s, so every scrape spaced more widely pays for one read); and
    `GET /metrics` of a `tracker serve` on the database, scraped every 2.1 s."""
    from tracker.store import Database

    opened = Database.open(f"sqlite:///{database}")
    try:
        reads = [timed(lambda: opened.reads.gauges(datetime.now(UTC))) for _ in range(20)]
    finally:
        opened.close()
    report(
        "metrics",
        f"the gauges of /metrics over {tasks:,} tasks, read 20 times: median; max",
        f"{statistics.median(reads) * 1000:.1f} ms; {max(reads) * 1000:.1f} ms",
    )
    port = free_port()
    env = {**os.environ, "TRACKER_DATABASE_URL": f"sqlite:///{database}"}
    server = subprocess.Popen([*TRACKER, "-q", "serve", "--port", str(port)], env=env)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        while not answers(url):
            assert time.monotonic() < deadline, "tracker serve did not come up"
            time.sleep(0.1)
        scrapes = []
        for _ in range(10):
            time.sleep(2.1)  # past the gauges' 2 s: each scrape reads them afresh
            scrapes.append(timed(lambda: urllib.request.urlopen(url, timeout=30).read()))
    finally:
        server.terminate()
        server.wait(timeout=30)
    report(
        "metrics",
        f"`GET /metrics` of `tracker serve`, {tasks:,} tasks, 10 scrapes 2.1 s apart: median; max",
        f"{statistics.median(scrapes) * 1000:.1f} ms; {max(scrapes) * 1000:.1f} ms",
    )


def timed(work: Callable[[], object]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).read()
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = options(__doc__)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--snapshots", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL", help="also measure the add on PostgreSQL")
    args = parse(parser)
    line_mb = 300
    if args.smoke:
        args.tasks, args.snapshots, line_mb = 1_000, 100, 3
    with tempfile.TemporaryDirectory(prefix="tracker-million-") as scratch:
        directory = Path(scratch)
        database = directory / "tracker.db"
        print(f"filling {database} with {args.tasks:,} tasks …", flush=True)
        fill(database, args.tasks, args.snapshots)
        db = ["--db", f"sqlite:///{database}"]

        print("list:")
        whole = measure([*db, "list", "--json"], directory)
        assert whole.returncode == 0 and whole.output.rstrip().endswith(b"]"), whole.output[-300:]
        report(
            "list",
            f"`tracker list --json`, {args.tasks + 1:,} tasks, read to the end: first byte",
            f"{whole.first_byte:.2f} s",
        )
        report("list", "  the same: all of it", f"{whole.seconds:.1f} s")
        report("list", "  the same: peak RSS", f"{whole.peak_mb:.0f} MB")
        page = measure([*db, "list", "--limit", "100"], directory)
        report("list", "`tracker list --limit 100`", f"{page.seconds:.2f} s, {page.peak_mb:.0f} MB")
        shown = measure([*db, "list"], directory, terminal=True)
        assert b"more; next page" in shown.output, shown.output[-300:]
        report(
            "list",
            "`tracker list` on a terminal (the newest 50, and how many more)",
            f"{shown.seconds:.2f} s",
        )
        last = measure([*db, "list", "--unfinished", "--limit", "100"], directory)
        report("list", "`tracker list --unfinished --limit 100`", f"{last.seconds:.2f} s")

        print("metrics:")
        metrics_section(database, args.tasks)

        print("history:")
        tail = measure([*db, "history", HISTORY_TASK, "--tail", "10"], directory)
        report(
            "history",
            f"`tracker history ID --tail 10`, {args.snapshots:,} snapshots",
            f"{tail.seconds:.2f} s",
        )
        history = measure([*db, "history", HISTORY_TASK, "--json"], directory)
        assert history.returncode == 0
        report(
            "history",
            "`tracker history ID --json`, read to the end: first byte; all",
            f"{history.first_byte:.2f} s; {history.seconds:.1f} s",
        )
        report("history", "  the same: peak RSS", f"{history.peak_mb:.0f} MB")

        print("refusal:")
        huge = directory / "one-line.txt"
        with huge.open("wb") as out:
            for _ in range(line_mb):
                out.write(b"a" * 1_000_000)
        refused = measure([*db, "add", "--file", str(huge)], directory)
        assert refused.returncode == 2, refused.output
        report(
            "refusal",
            f"`tracker add --file` with a {line_mb} MB line: refused (exit 2) after",
            f"{refused.seconds:.2f} s, {refused.peak_mb:.0f} MB",
        )
        huge.unlink()

        print("add:")
        ids = directory / "ids.txt"
        new_ids(ids, args.tasks, shuffled=False)
        with WriteProbe(database) as probe:
            add("in the order made", [*db, "add", "--file", str(ids)], directory, args.tasks, probe)
        new_ids(ids, args.tasks, shuffled=True)
        with WriteProbe(database) as probe:
            add("in random order", [*db, "add", "--file", str(ids)], directory, args.tasks, probe)
        if args.postgres:
            new_ids(ids, args.tasks, shuffled=False)
            with postgres_database(args.postgres) as url:
                pg = ["--db", url]
                subprocess.run([*TRACKER, *pg, "db", "upgrade"], check=True, capture_output=True)
                add("PostgreSQL", [*pg, "add", "--file", str(ids)], directory, args.tasks, None)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(the benchmark's own peak RSS: {own:.0f} MB; the load average: {os.getloadavg()})")
    finish(args.smoke, ["list", "metrics", "history", "refusal", "add"])


if __name__ == "__main__":
    main()
