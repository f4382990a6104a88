"""What an idle daemon costs: one `tracker run` watching one task at a 15 s interval.

    python benchmarks/idle.py                  # SQLite, 30 s measured
    python benchmarks/idle.py --seconds 60 --postgres postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/idle.py --smoke          # both runs in seconds (the tests')

The simulated API runs in a process of its own (`python -m tracker.simulator`), its one video
staying in progress. The daemon runs twice, each time for `--seconds` from two seconds after
its first poll: once as the plain command, whose CPU time (user + system, from
/proc/<pid>/stat) is the figure, and once with every SQL statement it sends counted (an
SQLAlchemy event in the same process; the counting costs CPU, so that run's time is not
reported). Polls are counted by the simulator. Linux only (/proc). --smoke measures a second
at a 1 s interval from half a second after the first poll and checks that both runs gave their
figures, not what they are.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from results import check_figures, parse
from scratch_database import postgres_database
from throughput import (
    TRACKER,
    cpu_seconds,
    environment,
    served,
    simulator,
)

WARM_UP = 2.0  # seconds from the daemon's first poll to its window: the start's work done
SMOKE_WARM_UP = 0.5

# Run inside the daemon's process: counts every statement sent to the database, with its time,
# and writes them out at exit.
COUNTING = """
import atexit, json, sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine

sent = []

@event.listens_for(Engine, "before_cursor_execute")
def count(conn, cursor, statement, parameters, context, executemany):
    sent.append((time.monotonic(), statement.split(None, 1)[0].upper()))

# A COPY goes to the driver directly, past SQLAlchemy's events.
try:
    import psycopg
except ImportError:
    pass
else:
    copy = psycopg.Cursor.copy

    def counted_copy(self, statement, *args, **kwargs):
        sent.append((time.monotonic(), str(statement).split(None, 1)[0].upper()))
        return copy(self, statement, *args, **kwargs)

    psycopg.Cursor.copy = counted_copy

path = sys.argv[1]
atexit.register(lambda: json.dump(sent, open(path, "w")))
sys.argv = ["tracker", "run"]
from tracker.cli.main import main
raise SystemExit(main())
"""


def run(
    command: list[str], env: dict[str, str], warm_up: float, seconds: float, url: str
) -> dict[str, float]:
    before = served(url)
    daemon = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        # Its task is due at once: the first poll says the daemon is up, whatever the machine's
        # load made of its start (a signal before that would end it unhandled).
        while served(url) == before:
            assert daemon.poll() is None, daemon.communicate()[1]
            time.sleep(0.05)
        time.sleep(warm_up)
        started, cpu_before, polls_before = time.monotonic(), cpu_seconds(daemon.pid), served(url)
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(daemon.pid) - cpu_before
        polled = served(url) - polls_before
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, err
    return {"started": started, "elapsed": elapsed, "cpu": cpu, "polls": polled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window (30)")
    parser.add_argument("--interval", type=float, default=15.0, help="the task's poll interval")
    parser.add_argument("--postgres", metavar="URL", help="a server to create a database on")
    args = parse(parser)
    warm_up, seconds, interval = (
        (SMOKE_WARM_UP, 1.0, 1.0) if args.smoke else (WARM_UP, args.seconds, args.interval)
    )
    with (
        tempfile.TemporaryDirectory() as directory,
        postgres_database(args.postgres)
        if args.postgres
        else nullcontext(f"sqlite:///{directory}/idle.db") as database,
        simulator(preload=1) as url,
    ):
        env = environment(url, database, interval)
        subprocess.run([*TRACKER, "add", "video_0"], env=env, check=True, capture_output=True)
        plain = run([*TRACKER, "run"], env, warm_up, seconds, url)
        trace = Path(directory) / "statements.json"
        counting = [sys.executable, "-c", COUNTING, str(trace)]
        counted = run(counting, env, warm_up, seconds, url)
        window = (counted["started"], counted["started"] + counted["elapsed"])
        sent = [kind for at, kind in json.loads(trace.read_text()) if window[0] <= at <= window[1]]
    database_kind = "PostgreSQL" if args.postgres else "SQLite"
    print(f"one `tracker run` on {database_kind}, one task every {interval:g} s:")
    cpu = (
        f"CPU over {plain['elapsed']:.0f} s: {plain['cpu']:.2f} s = "
        f"{100 * plain['cpu'] / plain['elapsed']:.2f}% of a core ({plain['polls']:.0f} polls)"
    )
    print(f"  {cpu}")
    per_second = len(sent) / counted["elapsed"]
    kinds = {kind: sent.count(kind) for kind in sorted(set(sent))}
    statements = (
        f"SQL statements over {counted['elapsed']:.0f} s: {len(sent)} = {per_second:.2f}/s "
        f"({', '.join(f'{n} {kind}' for kind, n in kinds.items())}; "
        f"{counted['polls']:.0f} polls)"
    )
    print(f"  {statements}")
    if args.smoke:
        check_figures(["plain", "counted"], [("plain", "CPU", cpu), ("counted", "SQL", statements)])


if __name__ == "__main__":
    main()
