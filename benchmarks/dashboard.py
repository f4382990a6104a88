"""How fast the dashboard answers with a million tasks stored, and what a live page costs the
browser.

    python benchmarks/dashboard.py [--tasks 1000000] [--snapshots 3] [--database PATH]
                                   [--live-tasks 100] [--live-seconds 20] [--trace PATH]
                                   [--live-only] [--rounds 1]
    python benchmarks/dashboard.py --smoke    # every part in seconds (the tests')

Fills an SQLite file the way a year of use would leave it (most tasks finished, by every
reason, the newest half percent still watched, a few snapshots each; with ``--database``, a
file filled before is reused), then serves it with ``tracker serve`` (in a thread, as
``tracker.testing.RunningApp`` does) and times over HTTP on 127.0.0.1: the overview
(``GET /``) the first time after the server started and then as a median, filtered overviews,
a task's page, the counts, and the store reads behind them on their own; and the bytes the
overview sends, compressed as browsers ask.

Then the live page: a daemon polls ``--live-tasks`` simulated videos once a second each
(each poll moves its progress) and Chromium (/usr/bin/chromium) shows them on the overview,
first launched plainly, as a user's browser runs, its renderers' CPU read from /proc over
``--live-seconds``, then driven by Playwright, for Chromium's own breakdown (DevTools being
attached makes the renderer report every chunk and event it receives, which costs it some
0.3 to 0.6% of a core more); then the same page with no daemon, nothing moving but the ages.
An empty page's renderers are measured last, for what Chromium costs with nothing shown.
``--live-only`` skips the million; ``--rounds`` repeats the live part. ``--smoke`` runs every
part with a thousand tasks, five live ones (polled: not the page with nothing moving) and
half-second windows after a second to settle, and checks that each gave its figures, not what
they are; without /usr/bin/chromium it says so and skips the browser's parts. The figures are
in docs/performance.md (The dashboard).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from plain_chromium import (
    CHROMIUM,
    SETTLE_SECONDS,
    SMOKE_SETTLE_SECONDS,
    percent,
    plain_renderers,
)
from results import check_figures, options, parse

from tracker.core.clock import SystemClock
from tracker.core.models import TaskFilter
from tracker.settings import Settings
from tracker.store import Database
from tracker.store.schema import UTCDateTime
from tracker.testing import RunningApp

# Finished tasks by reason, per thousand; the newest ``UNFINISHED_SHARE`` are still watched.
REASONS = [
    ("completed", 900),
    ("failed", 60),
    ("not_found", 15),
    ("timed_out", 15),
    ("removed", 10),
]
UNFINISHED_SHARE = 0.005
SPAN = timedelta(days=365)
BATCH = 20_000
LABELS = ["launch trailer", "ads", "shorts", "tutorials", None]


def text(value: datetime | None) -> str | None:
    return UTCDateTime.sqlite_text(value)


def fill(path: Path, tasks: int, snapshots_per_task: int, seed: int = 7) -> None:
    """``tasks`` tasks registered over the last year, oldest first, with their snapshots,
    written straight through sqlite3 in large transactions (the schema made by the
    migrations first)."""
    Database.open(f"sqlite:///{path}").close()
    random.seed(seed)
    reasons = [reason for reason, share in REASONS for _ in range(share)]
    now = datetime.now(UTC)
    start = now - SPAN
    step = SPAN / tasks
    unfinished_from = int(tasks * (1 - UNFINISHED_SHARE))
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = OFF")
    snapshot_id = 0
    for first in range(0, tasks, BATCH):
        task_rows = []
        snapshot_rows = []
        for index in range(first, min(first + BATCH, tasks)):
            registered = start + step * index
            task_id = f"video_{index:08d}_{random.getrandbits(40):010x}"
            polls = snapshots_per_task
            if index >= unfinished_from:
                status, progress, reason, finished_at = (
                    "in_progress",
                    random.randint(1, 99),
                    None,
                    None,
                )
            else:
                reason = random.choice(reasons)
                status = {"completed": "completed", "failed": "failed"}.get(reason, "in_progress")
                progress = 100 if reason == "completed" else random.randint(0, 99)
                finished_at = registered + timedelta(minutes=5)
            last_polled = registered + timedelta(seconds=20 * polls)
            error = "moderation_blocked: The prompt was blocked." if reason == "failed" else None
            task_rows.append(
                (
                    task_id,
                    random.choice(LABELS),
                    status,
                    progress,
                    reason is not None,
                    reason,
                    text(registered),
                    text(last_polled),
                    text(now if reason is None else last_polled),
                    text(finished_at),
                    polls,
                    int(error is not None),
                    error,
                    "sora-2",
                    "4",
                    "720x1280",
                    "default",
                )
            )
            for poll in range(polls):
                snapshot_id += 1
                last = poll == polls - 1
                snapshot_rows.append(
                    (
                        snapshot_id,
                        task_id,
                        text(registered + timedelta(seconds=20 * (poll + 1))),
                        200,
                        status if last else ("queued" if poll == 0 else "in_progress"),
                        progress if last else 0,
                        last and reason is not None,
                        35.0,
                    )
                )
        connection.execute("BEGIN")
        connection.executemany(
            "INSERT INTO tasks (task_id, label, status, progress, finished, finish_reason, "
            "registered_at, last_polled_at, next_poll_at, finished_at, poll_count, error_count, "
            "last_error, model, seconds, size, provider) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            task_rows,
        )
        connection.executemany(
            "INSERT INTO snapshots (id, task_id, polled_at, http_status, status, progress, "
            "finished, latency_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            snapshot_rows,
        )
        connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def timed(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The first run's time and the median of ``repeat`` more, in milliseconds."""
    started = time.perf_counter()
    action()
    first = (time.perf_counter() - started) * 1000
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        runs.append((time.perf_counter() - started) * 1000)
    return first, statistics.median(runs)


def measure(path: Path, repeat: int) -> Iterator[tuple[str, str, str]]:
    """Each measure's name, its first time and its median."""
    database = Database.open(f"sqlite:///{path}")
    settings = Settings(database_url=f"sqlite:///{path}")
    with (
        RunningApp(settings, database) as url,
        httpx.Client(base_url=url, timeout=60, headers={"Accept-Encoding": "gzip"}) as client,
    ):

        def get(target: str) -> Callable[[], object]:
            def go() -> None:
                response = client.get(target)
                assert response.status_code == 200, (target, response.status_code)

            return go

        # Right after the start: the counts are not read yet, the page does not wait for them.
        yield row(
            "GET / (the overview), first after the start, then median", *timed(get("/"), repeat)
        )
        client.get("/summary")  # the counts read once: pages show them from here on
        yield row("GET / with the counts", *timed(get("/"), repeat))
        yield row("GET /?limit=100", *timed(get("/?limit=100"), repeat))
        for target in ("/?state=unfinished", "/?state=failed", "/?label=ads", "/?q=video_0099"):
            yield row(f"GET {target}", *timed(get(target), repeat))
        yield row("GET /?q=video_ (every task matches)", *timed(get("/?q=video_"), repeat))
        newest = database.reads.page(TaskFilter(), 1)[0].task_id
        yield row("GET /tasks/{id} (a task's page)", *timed(get(f"/tasks/{newest}"), repeat))
        for target in ("/", "/?limit=100"):
            raw = client.get(target)
            size = f"{raw.num_bytes_downloaded / 1024:,.1f} KB"
            yield f"bytes of GET {target}, gzip", size, f"{len(raw.content) / 1024:,.1f} KB plain"
        for asset in ("dashboard.css", "dashboard.js"):
            answer = client.get(f"/static/dashboard/{asset}")
            yield f"bytes of {asset}", f"{len(answer.content) / 1024:,.1f} KB", ""
    clock = SystemClock()
    reads = database.reads
    yield row("store: Reads.stats (the counts)", *timed(lambda: reads.stats(clock.now()), 3))
    yield row("store: the newest 51 tasks", *timed(lambda: reads.page(TaskFilter(), 51), repeat))
    database.close()


def row(name: str, first: float, median: float) -> tuple[str, str, str]:
    return name, f"{first:,.1f} ms", f"{median:,.1f} ms"


def live_cost(
    tasks: int,
    seconds: float,
    polling: bool = True,
    trace: Path | None = None,
    settle: float = SETTLE_SECONDS,
) -> Iterator[tuple[str, str, str]]:
    """The renderer's CPU while the overview shows ``tasks`` tasks each polled once a second
    (or, ``polling`` off, the same page with nothing moving): first in a Chromium nobody drives,
    as a user's is, its CPU read from /proc; then in one driven by Playwright, whose DevTools
    connection has the renderer report every chunk and event it receives, which costs the
    renderer too, but gives the breakdown (``trace`` keeps its timeline for chrome://tracing)."""
    from playwright.sync_api import sync_playwright

    from tracker import Tracker
    from tracker.simulator import Reply, Simulator, SimulatorServer

    simulator = Simulator(token="benchmark")
    rising = [Reply(video={"status": "in_progress", "progress": n % 100}) for n in range(10_000)]
    ids = [simulator.script(f"video_live_{index:03d}", rising) for index in range(tasks)]
    what = "live overview" if polling else "the same, nothing moving"
    with (
        tempfile.TemporaryDirectory(prefix="tracker-live-") as scratch,
        SimulatorServer(simulator) as api_base,
        Tracker(
            database_url=f"sqlite:///{Path(scratch) / 'live.db'}",
            api_base=api_base,
            token="benchmark",
            poll_interval=1.0,
        ) as tracker,
    ):
        tracker.add(ids)
        settings = Settings(database_url=tracker.settings.database_url)
        with (
            daemon(tracker) if polling else nullcontext(),
            RunningApp(settings, tracker.database) as url,
        ):
            overview = f"{url}/?state=unfinished&limit=100"

            def polls() -> int:
                return tracker.database.reads.stats(SystemClock().now()).polls_total

            started, polled = time.monotonic(), polls()
            page, every = plain_renderers(overview, Path(scratch) / "profile", seconds, settle)
            rate = (polls() - polled) / (time.monotonic() - started)
            yield f"{what}: row updates a second", f"{rate:,.0f}", f"{tasks} tasks"
            yield f"{what}, plain Chromium: the page's renderer", percent(page), ""
            yield f"{what}, plain Chromium: every renderer", percent(every), ""
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM)
                tab = browser.new_page()
                tab.goto(overview)
                tab.wait_for_selector("table.tasks")
                system = browser.new_browser_cdp_session()
                metrics = tab.context.new_cdp_session(tab)
                metrics.send("Performance.enable")
                time.sleep(settle)

                def sample() -> dict[str, float]:
                    processes = system.send("SystemInfo.getProcessInfo")["processInfo"]
                    got = metrics.send("Performance.getMetrics")["metrics"]
                    values = {m["name"]: float(m["value"]) for m in got if m["name"] in WATCHED}
                    values["renderer"] = sum(
                        p["cpuTime"] for p in processes if p["type"] == "renderer"
                    )
                    values["wall"] = time.monotonic()
                    return values

                before = sample()
                if trace is not None:
                    browser.start_tracing(page=tab, categories=["devtools.timeline"])
                time.sleep(seconds)
                after = sample()
                if trace is not None:
                    trace.write_bytes(browser.stop_tracing())
                browser.close()
    spent = {name: after[name] - before[name] for name in after}
    wall = spent.pop("wall")
    for name, value in spent.items():
        measure = WATCHED.get(name, "renderer CPU, all threads")
        yield f"{what}, driven by Playwright: {measure}", percent(value / wall), ""


WATCHED = {
    "TaskDuration": "renderer main thread busy",
    "ScriptDuration": "of which scripts",
    "RecalcStyleDuration": "of which style",
    "LayoutDuration": "of which layout",
}


@contextmanager
def daemon(tracker: Any) -> Iterator[None]:
    """``tracker run`` in a thread of its own until the block ends."""
    loop: list[asyncio.AbstractEventLoop] = []
    stop: list[asyncio.Event] = []

    async def main() -> None:
        loop.append(asyncio.get_running_loop())
        stop.append(asyncio.Event())
        await tracker.run_async(stop=stop[0])

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    while not stop:
        time.sleep(0.05)
    try:
        yield
    finally:
        loop[0].call_soon_threadsafe(stop[0].set)
        thread.join(30)


def main() -> None:
    parser = options(__doc__)
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--snapshots", type=int, default=3, help="per task")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--database", type=Path, help="keep (or reuse) the filled file here")
    parser.add_argument("--live-tasks", type=int, default=100)
    parser.add_argument("--live-seconds", type=float, default=20, help="0 skips the browser")
    parser.add_argument("--trace", type=Path, help="write the live window's Chromium trace here")
    parser.add_argument("--live-only", action="store_true", help="only the live page's cost")
    parser.add_argument("--rounds", type=int, default=1, help="of the live page's cost")
    args = parse(parser)
    settle = SETTLE_SECONDS
    if args.smoke:
        vars(args).update(tasks=1_000, snapshots=1, repeat=2, live_tasks=5, live_seconds=0.5)
        settle = SMOKE_SETTLE_SECONDS
    parts = ["million"] if not args.live_only else []
    if args.live_seconds > 0:
        if Path(CHROMIUM).exists():
            parts += ["live", "empty page"]
        else:
            print(f"live, empty page: skipped (no Chromium at {CHROMIUM})")
    figures: list[tuple[str, str, str]] = []
    if "million" in parts:
        with tempfile.TemporaryDirectory(prefix="tracker-dashboard-") as scratch:
            path = args.database or Path(scratch) / "dashboard.db"
            if not path.exists():
                print(f"filling {path} with {args.tasks:,} tasks …", flush=True)
                started = time.perf_counter()
                fill(path, args.tasks, args.snapshots)
                print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)
            print("\n| measure | first | median |\n|---|---|---|")
            for name, first, median in measure(path, args.repeat):
                figures.append(("million", name, first))
                print(f"| {name} | {first} | {median} |", flush=True)
    if "live" in parts:
        print("\n| measure | value | note |\n|---|---|---|")
        for _ in range(args.rounds):
            # Smoke mode leaves out the page with nothing moving: the same code, a daemon fewer.
            for polling in (True,) if args.smoke else (True, False):
                trace = args.trace if polling else None
                for name, value, note in live_cost(
                    args.live_tasks, args.live_seconds, polling, trace, settle
                ):
                    figures.append(("live", name, value))
                    print(f"| {name} | {value} | {note} |", flush=True)
        with tempfile.TemporaryDirectory(prefix="tracker-blank-") as scratch:
            _, blank = plain_renderers("about:blank", Path(scratch), args.live_seconds, settle)
        empty = "an empty page (about:blank), plain Chromium: every renderer"
        figures.append(("empty page", empty, percent(blank)))
        print(f"| {empty} | {percent(blank)} | |")
    sys.stdout.flush()
    if args.smoke:
        check_figures(parts, figures)


if __name__ == "__main__":
    main()
