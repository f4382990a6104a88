"""How big the database grows per 10,000 tasks, in each recording mode and after pruning.

    python benchmarks/storage.py [--tasks 1000]
    python benchmarks/storage.py --smoke    # five tasks polled ten times as often (the tests')

Each simulated task has a realistic life: queued for 4 polls, then progress rising 5 points
every second poll from 5 to 95 (38 polls), then completed: 43 polls. The daemon polls them
all to the end on an SQLite file, once with `--record all` and once with `--record changes`;
the first file is then pruned as `tracker prune` would. Sizes are measured after a checkpoint
and VACUUM, and scaled to 10,000 tasks. --smoke polls five tasks every 0.01 s and checks that
each row of the table was measured, not what it says.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from results import check_figures, options, parse

from tracker import Tracker
from tracker.daemon.retention import prune
from tracker.simulator import Reply, Simulator, SimulatorServer

TOKEN = "storage-benchmark-token"


def lifecycle() -> list[Reply]:
    replies = [Reply(video={"status": "queued", "progress": 0})] * 4
    for progress in range(5, 100, 5):
        replies += [Reply(video={"status": "in_progress", "progress": progress})] * 2
    return [*replies, Reply(video={"status": "completed", "progress": 100})]


def run(directory: Path, tasks: int, mode: str, interval: float) -> Path:
    simulator = Simulator(token=TOKEN)
    ids = [simulator.script(f"video_{i}", lifecycle()) for i in range(tasks)]
    database = directory / f"{mode}.db"
    with (
        SimulatorServer(simulator) as url,
        Tracker(
            database_url=f"sqlite:///{database}",
            api_base=url,
            token=TOKEN,
            poll_interval=interval,
            concurrency=64,
        ) as tracker,
    ):
        tracker.settings = replace(tracker.settings, record=mode)
        tracker.add(ids)
        asyncio.run(tracker.run_async(until_done=True))
    return database


def size(database: Path) -> tuple[int, int]:
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("VACUUM")
    rows = connection.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    connection.close()
    return database.stat().st_size, rows


def main() -> None:
    parser = options(__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    args = parse(parser)
    tasks, interval = (5, 0.01) if args.smoke else (args.tasks, 0.05)
    scale = 10_000 / tasks
    results = []
    with tempfile.TemporaryDirectory(prefix="tracker-storage-") as scratch:
        directory = Path(scratch)
        for mode in ("all", "changes"):
            print(f"polling {tasks:,} tasks to the end, --record {mode} …", flush=True)
            database = run(directory, tasks, mode, interval)
            results.append((f"--record {mode}", *size(database)))
            if mode == "all":
                with Tracker(database_url=f"sqlite:///{database}") as tracker:
                    cutoff = datetime.now(UTC) + timedelta(days=1)  # everything counts as old
                    prune(tracker.database.retention, cutoff)
                results.append(("--record all, then prune", *size(database)))
    print(
        f"\n| per 10,000 tasks (43 polls each; measured with {tasks:,}, scaled) "
        "| snapshots | database |\n|---|---|---|"
    )
    for label, bytes_, rows in results:
        print(f"| {label} | {rows * scale:,.0f} | {bytes_ * scale / 1e6:,.1f} MB |")
    sys.stdout.flush()
    if args.smoke:
        figures = [(label, "snapshots", f"{rows:,}") for label, _, rows in results]
        check_figures(["--record all", "--record all, then prune", "--record changes"], figures)


if __name__ == "__main__":
    main()
