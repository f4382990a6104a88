"""``tracker demo``: the daemon against the built-in simulator, watched live, then queried. Its
database stays behind, with the commands that explore it."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from sqlalchemy.engine import make_url

from tracker.cli import render
from tracker.cli.live import LiveView
from tracker.core.eventloop import run_event_loop
from tracker.core.models import Stats, Task
from tracker.errors import TrackerError, UsageError
from tracker.python_api import Tracker
from tracker.simulator import Simulator, SimulatorServer
from tracker.store import Database, engine, migrations

DEMO_TOKEN = "demo-token"
DEMO_LABEL = "demo"
# The demo's tasks and what the simulator makes each one do.
DEMO_TASKS: dict[str, dict[str, Any] | None] = {
    "video_sunrise": {"steps": 5},
    "video_ocean": {"queued": 2, "steps": 8},
    "video_city": {"steps": 3, "outcome": "failed"},
    "sora-2:task_relay": {"steps": 6, "style": "relay"},
    "video_missing": None,  # never created: 404 three times, finished as not_found
}
EXAMPLE_QUERY = (
    "SELECT t.task_id, t.finish_reason, COUNT(*) AS snapshots, "
    "SUM(CASE WHEN s.http_status <> 200 THEN 1 ELSE 0 END) AS failed_polls "
    "FROM tasks t JOIN snapshots s ON s.task_id = t.task_id "
    "GROUP BY t.task_id, t.finish_reason ORDER BY t.task_id"
)
EXPLORING_QUERY = "SELECT finish_reason, COUNT(*) AS tasks FROM tasks GROUP BY finish_reason"
REFRESH_SECONDS = 0.2
# The first bytes of every SQLite database, and the two that say it is in WAL mode as every
# database tracker writes is.
_SQLITE_HEADER = b"SQLite format 3\x00"
_WAL = b"\x02\x02"


def run_demo(out: TextIO, database_url: str, interval: float = 0.4) -> int:
    """The demo on the SQLite database ``database_url``: made afresh, replacing a previous
    demo's; any other file there is left alone (UsageError)."""
    path = _demo_file(database_url)
    replacing = path.exists()
    if replacing:
        _remove_previous_demo(path, database_url)
    simulator = Simulator(token=DEMO_TOKEN)
    for task_id, lifecycle in DEMO_TASKS.items():
        if lifecycle is not None:
            simulator.add_video(task_id, **lifecycle)
    with SimulatorServer(simulator) as api_base:
        made = "replacing the previous demo's" if replacing else "new"
        out.write(f"Simulated video API at {api_base}; database {path} ({made})\n")
        with Tracker(
            database_url, api_base, DEMO_TOKEN, poll_interval=interval, request_timeout=5
        ) as tracker:
            tracker.add(DEMO_TASKS, label=DEMO_LABEL)
            out.write(f"Registered {len(DEMO_TASKS)} tasks; polling every {interval:g}s\n\n")
            out.flush()
            run_event_loop(_run_with_live_view(tracker, Console(file=out)))
            _print_outcome(tracker, out, database_url, path)
    return 0


def _demo_file(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise UsageError(
            "--db: the demo keeps its database in a SQLite file (sqlite:///PATH), "
            "which it replaces when it runs again"
        )
    return Path(url.database)


def _remove_previous_demo(path: Path, database_url: str) -> None:
    if not _made_by_the_demo(path, database_url):
        raise UsageError(
            f"{path} exists and is not a database the demo made: it is left as it is; "
            "remove it or name another file with --db"
        )
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _made_by_the_demo(path: Path, database_url: str) -> bool:
    """Whether the file is a tracker database at the current schema holding the demo's tasks
    only. A file that is not a SQLite database in WAL mode is told apart by its first bytes,
    before a connection could turn another program's database to WAL."""
    with path.open("rb") as file:
        header = file.read(20)
    if not header.startswith(_SQLITE_HEADER) or header[18:20] != _WAL:
        return False
    database = Database(engine.create_engine(database_url))
    try:
        with engine.reported_errors():
            if migrations.current_revision(database.engine) != migrations.HEAD_REVISION:
                return False
            tasks = database.reads.tasks(limit=len(DEMO_TASKS) + 1)
    except TrackerError:
        return False
    finally:
        database.close()
    return all(task.task_id in DEMO_TASKS and task.label == DEMO_LABEL for task in tasks)


async def _run_with_live_view(tracker: Tracker, console: Console) -> None:
    def read() -> tuple[Stats, list[Task]]:
        return tracker.stats(), tracker.tasks()

    view = LiveView(read, limit=40, console=console)
    daemon = asyncio.create_task(tracker.run_async(until_done=True, handle_signals=True))
    with view.showing() as live:
        while not daemon.done():
            await asyncio.to_thread(view.refresh, live, REFRESH_SECONDS)
            await asyncio.sleep(REFRESH_SECONDS)
        await asyncio.to_thread(view.refresh, live, REFRESH_SECONDS)
    await daemon


def _print_outcome(tracker: Tracker, out: TextIO, database_url: str, path: Path) -> None:
    task_id = next(iter(DEMO_TASKS))
    db = f"--db {shlex.quote(database_url)}"
    snapshots = tracker.history(task_id)
    out.write(f"\nHistory of {task_id}:\n")
    out.write(
        render.table(
            ["polled_at", "http_status", "status", "progress", "latency_ms", "finished"],
            [
                [s.polled_at, s.http_status, s.status, s.progress, s.latency_ms, s.finished]
                for s in snapshots
            ],
        )
        + "\n\n"
    )
    result = tracker.sql(EXAMPLE_QUERY)
    out.write(f"An example query:\ntracker sql {shlex.quote(EXAMPLE_QUERY)} {db}\n\n")
    out.write(render.table(result.columns, result.rows) + "\n\n")
    out.write(
        f"The demo's database stays in {path} (the next demo replaces it). Explore it:\n"
        f"  tracker list {db}\n"
        f"  tracker history {task_id} {db}\n"
        f"  tracker sql {shlex.quote(EXPLORING_QUERY)} {db}\n"
        f"  tracker serve {db}    (the dashboard, at http://127.0.0.1:8080/)\n"
    )
