"""What an idle daemon costs: one `tracker run` watching one task at a 15 s interval.

    python benchmarks/idle.py                  # SQLite, 30 s measured
    python benchmarks/idle.py --seconds 60 --postgres postgresql://postgres@127.0.0.1:5432/test

The simulated API runs in a process of its own (`python -m tracker.simulator`), its one video
staying in progress. The daemon runs twice, each time for `--seconds` after a few seconds to
start: once as the plain command, whose CPU time (user + system, from /proc/<pid>/stat) is the
figure, and once with every SQL statement it sends counted (an SQLAlchemy event in the same
process; the counting costs CPU, so that run's time is not reported). Polls are counted by the
simulator. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from throughput import cpu_seconds

TOKEN = "bench-token"
WARM_UP = 4.0  # seconds for the daemon to start (imports, schema) before measuring
TRACKER = [sys.executable, "-m", "tracker"]

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

path = sys.argv[1]
atexit.register(lambda: json.dump(sent, open(path, "w")))
sys.argv = ["tracker", "run"]
from tracker.cli.main import main
raise SystemExit(main())
"""


def simulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            *TRACKER[:1],
            "-m",
            "tracker.simulator",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--preload",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().split(" at ", 1)[1].split(" ", 1)[0]
    return process, url


def polls(url: str) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{url}/_simulator/stats") as answer:
        return int(json.loads(answer.read())["requests"])


def run(command: list[str], env: dict[str, str], seconds: float, url: str) -> dict[str, float]:
    daemon = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(WARM_UP)
        assert daemon.poll() is None, daemon.communicate()[1]
        started, cpu_before, polls_before = time.monotonic(), cpu_seconds(daemon.pid), polls(url)
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        cpu = cpu_seconds(daemon.pid) - cpu_before
        polled = polls(url) - polls_before
    finally:
        daemon.send_signal(signal.SIGTERM)
        _out, err = daemon.communicate(timeout=15)
    assert daemon.returncode == 0, err
    return {"started": started, "elapsed": elapsed, "cpu": cpu, "polls": polled}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window (30)")
    parser.add_argument("--interval", default="15", help="the task's poll interval (15)")
    parser.add_argument("--postgres", metavar="URL", help="a server to create a database on")
    args = parser.parse_args()
    server, url = simulator()
    admin = None
    try:
        with tempfile.TemporaryDirectory() as directory:
            database = f"sqlite:///{directory}/idle.db"
            if args.postgres:
                import psycopg

                name = f"tracker_idle_{secrets.token_hex(4)}"
                admin = psycopg.connect(args.postgres, autocommit=True)
                admin.execute(f'CREATE DATABASE "{name}"')
                database = args.postgres.rsplit("/", 1)[0] + f"/{name}"
            env = {
                **os.environ,
                "TRACKER_DATABASE_URL": database,
                "TRACKER_API_BASE": url,
                "TRACKER_API_TOKEN": TOKEN,
                "TRACKER_POLL_INTERVAL": args.interval,
            }
            subprocess.run([*TRACKER, "add", "video_0"], env=env, check=True, capture_output=True)
            plain = run([*TRACKER, "run"], env, args.seconds, url)
            trace = Path(directory) / "statements.json"
            counted = run([sys.executable, "-c", COUNTING, str(trace)], env, args.seconds, url)
            window = (counted["started"], counted["started"] + counted["elapsed"])
            sent = [
                kind for at, kind in json.loads(trace.read_text()) if window[0] <= at <= window[1]
            ]
            if admin is not None:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    database_kind = "PostgreSQL" if args.postgres else "SQLite"
    print(f"one `tracker run` on {database_kind}, one task every {args.interval} s:")
    print(
        f"  CPU over {plain['elapsed']:.0f} s: {plain['cpu']:.2f} s = "
        f"{100 * plain['cpu'] / plain['elapsed']:.2f}% of a core ({plain['polls']} polls)"
    )
    per_second = len(sent) / counted["elapsed"]
    kinds = {kind: sent.count(kind) for kind in sorted(set(sent))}
    print(
        f"  SQL statements over {counted['elapsed']:.0f} s: {len(sent)} = {per_second:.2f}/s "
        f"({', '.join(f'{n} {kind}' for kind, n in kinds.items())}; {counted['polls']} polls)"
    )


if __name__ == "__main__":
    main()
