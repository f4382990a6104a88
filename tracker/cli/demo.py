"""``tracker demo``: the daemon against the built-in simulator, watched live, then queried."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import TextIO

from rich.console import Console

from tracker.cli import render
from tracker.cli.live import LiveView
from tracker.core.eventloop import run_event_loop
from tracker.core.models import Stats, Task
from tracker.python_api import Tracker
from tracker.simulator import Simulator, SimulatorServer

DEMO_TOKEN = "demo-token"
EXAMPLE_QUERY = (
    "SELECT t.task_id, t.finish_reason, COUNT(*) AS snapshots, "
    "SUM(CASE WHEN s.http_status <> 200 THEN 1 ELSE 0 END) AS failed_polls "
    "FROM tasks t JOIN snapshots s ON s.task_id = t.task_id "
    "GROUP BY t.task_id, t.finish_reason ORDER BY t.task_id"
)
REFRESH_SECONDS = 0.2


def _simulated_tasks(simulator: Simulator) -> list[str]:
    return [
        simulator.add_video("video_demo_sunrise", steps=5),
        simulator.add_video("video_demo_ocean", queued=2, steps=8),
        simulator.add_video("video_demo_city", steps=3, outcome="failed"),
        simulator.add_video("sora-2:task_demo_relay", steps=6, style="relay"),
        "video_demo_missing",  # never created: 404 three times, finished as not_found
    ]


def run_demo(out: TextIO, interval: float = 0.4) -> int:
    simulator = Simulator(token=DEMO_TOKEN)
    task_ids = _simulated_tasks(simulator)
    with (
        tempfile.TemporaryDirectory(prefix="tracker-demo-") as directory,
        SimulatorServer(simulator) as api_base,
    ):
        database = Path(directory) / "demo.db"
        out.write(f"Simulated video API at {api_base}; database {database}\n")
        with Tracker(
            f"sqlite:///{database}",
            api_base,
            DEMO_TOKEN,
            poll_interval=interval,
            request_timeout=5,
        ) as tracker:
            tracker.add(task_ids, label="demo")
            out.write(f"Registered {len(task_ids)} tasks; polling every {interval:g}s\n\n")
            out.flush()
            run_event_loop(_run_with_live_view(tracker, Console(file=out)))
            _print_outcome(tracker, out, task_ids[0])
    return 0


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


def _print_outcome(tracker: Tracker, out: TextIO, task_id: str) -> None:
    snapshots = tracker.history(task_id)
    out.write(f"\nHistory of {task_id} (tracker history {task_id}):\n")
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
    out.write(f'An example query (tracker sql "…"):\n{EXAMPLE_QUERY}\n\n')
    out.write(render.table(result.columns, result.rows) + "\n")
