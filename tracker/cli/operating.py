"""``stats``, ``watch``, ``prune``, ``export``, ``sql``, ``db``: looking after it; ``demo`` and
``simulator``: trying it."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from tracker.cli import render
from tracker.cli.common import plural, say, settings_of, tracker_for
from tracker.core.clock import SystemClock
from tracker.core.encoding import jsonable
from tracker.core.eventloop import collect_garbage_for_a_long_run, run_event_loop
from tracker.core.exports import ExportFormat, export_lines
from tracker.core.models import Stats, Task
from tracker.core.texts import age
from tracker.errors import UsageError
from tracker.settings.values import (
    DAY,
    parse_count,
    parse_database_url,
    parse_duration,
    parse_host,
    parse_moment,
    parse_port,
    parse_short_duration,
)
from tracker.store import engine, migrations
from tracker.store.sandbox import DEFAULT_TIMEOUT_SECONDS

DEMO_DATABASE_URL = "sqlite:///tracker-demo.db"
# Where `tracker simulator` suggests keeping its tasks: apart from real ones, which a daemon
# pointed at the simulator would find missing there.
SIMULATED_DATABASE_URL = "sqlite:///tracker-simulated.db"


def _parsed(parse: Any, raw: str, flag: str) -> Any:
    try:
        return parse(raw)
    except ValueError as exc:
        raise UsageError(f"{flag} {raw!r}: {exc}") from None


def stats(args: argparse.Namespace) -> int:
    with tracker_for(args) as tracker:
        summary = tracker.stats()
    if args.json:
        document = {k: jsonable(v) for k, v in asdict(summary).items()}
        document["paused"] = [
            {k: jsonable(v) for k, v in asdict(pause).items()} for pause in summary.paused
        ]
        say(json.dumps(document, indent=2))
    else:
        from tracker.cli.live import summary_lines  # rich is loaded by the commands that draw

        say("\n".join(summary_lines(summary)))
    return 0


def daemons(args: argparse.Namespace) -> int:
    with tracker_for(args) as tracker:
        rows = tracker.daemons()
    now = datetime.now(UTC)
    if args.json:
        say(render.to_json([{**asdict(row), "state": row.state(now)} for row in rows]))
        return 0
    if not rows:
        say("no daemon has run on this database in the last day")
        return 0
    columns = ["host", "pid", "state", "providers", "holds", "polls/min", "started", "last seen"]
    say(
        render.table(
            columns,
            [
                [
                    row.host,
                    row.pid,
                    row.state(now),
                    ", ".join(row.providers),
                    row.held,
                    row.polls_last_minute,
                    f"{age(now - row.started_at)} ago",
                    f"{age(now - (row.stopped_at or row.last_seen_at))} ago",
                ]
                for row in rows
            ],
        )
    )
    return 0


def watch(args: argparse.Namespace) -> int:
    from tracker.cli.live import LiveView

    refresh = _parsed(lambda raw: parse_duration(raw, most=DAY), args.refresh, "--refresh")
    limit = _parsed(lambda raw: parse_count(raw, 1, 10_000), args.limit, "--limit")
    with tracker_for(args) as tracker:

        def read() -> tuple[Stats, list[Task]]:
            with engine.reported_errors():
                return tracker.stats(), tracker.tasks(unfinished=True, limit=limit)

        with contextlib.suppress(KeyboardInterrupt):
            LiveView(read, limit).run_forever(refresh)
    return 0


def prune(args: argparse.Namespace) -> int:
    older_than = _parsed(parse_duration, args.older_than, "--older-than")
    with tracker_for(args) as tracker:
        count = tracker.prune(older_than, dry_run=args.dry_run)
    say(f"{'would prune' if args.dry_run else 'pruned'} {plural(count, 'snapshot')}")
    return 0


def export(args: argparse.Namespace) -> int:
    since = _since(args.since)
    with tracker_for(args) as tracker:
        if args.output is None:
            _write_rows(tracker.export(args.table, since), args.export_format, sys.stdout)
            return 0
        directory = Path(args.output)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--output {args.output!r}: {exc.strerror or exc}") from None
        for table in ("tasks", "snapshots"):
            path = directory / f"{table}.{args.export_format}"
            with path.open("w", encoding="utf-8", newline="") as out:
                count = _write_rows(tracker.export(table, since), args.export_format, out)
            say(f"{path}: {count:,} rows", sys.stderr)
    return 0


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    moment: datetime = _parsed(lambda text: parse_moment(text, datetime.now(UTC)), raw, "--since")
    return moment


def _write_rows(rows: Iterator[dict[str, Any]], export_format: ExportFormat, out: TextIO) -> int:
    count = 0
    for line in export_lines(rows, export_format):
        out.write(line)
        count += 1
    return count


def sql(args: argparse.Namespace) -> int:
    timeout = DEFAULT_TIMEOUT_SECONDS
    if args.timeout is not None:
        timeout = _parsed(parse_short_duration, args.timeout, "--timeout")
    with tracker_for(args) as tracker:
        result = tracker.sql(args.query, timeout)
    if args.json:
        say(render.to_json(render.query_rows(result.columns, result.rows)))
    elif args.csv:
        sys.stdout.write(render.to_csv(result.columns, result.rows))
    else:
        say(render.table(result.columns, result.rows, max_width=80))
        say(f"({plural(len(result.rows), 'row')})")
    return 0


def db(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    database = engine.create_engine(settings.database_url)
    try:
        if args.action == "upgrade":
            migrations.upgrade(database)
        revision = migrations.current_revision(database)
    finally:
        database.dispose()
    head = migrations.head_revision()
    state = "head" if revision == head else f"head is {head}"
    say(f"{engine.describe(database)}: revision {revision or 'none'} ({state})")
    return 0


def serve(args: argparse.Namespace) -> int:
    from tracker.daemon.serving import serve as serve_app  # the web stack loads here only

    with tracker_for(args) as tracker:
        collect_garbage_for_a_long_run()
        run_event_loop(
            serve_app(tracker.settings, tracker.database, SystemClock(), handle_signals=True)
        )
    return 0


def demo(args: argparse.Namespace) -> int:
    from tracker.cli.demo import run_demo
    from tracker.cli.main import configure_logging

    # Its own default, never TRACKER_DATABASE_URL: the demo replaces the file it names.
    raw = getattr(args, "database_url", DEMO_DATABASE_URL)
    database_url = _parsed(parse_database_url, raw, "--db")
    # The live view already shows what the daemon's INFO lines would say.
    configure_logging(args, settings_of(args), shift=-1)
    return run_demo(sys.stdout, database_url)


def simulator(args: argparse.Namespace) -> int:
    """The simulated API with one video of each kind, until Ctrl-C or SIGTERM (exit 0)."""
    from tracker.simulator import Simulator, SimulatorServer
    from tracker.simulator.lifecycles import TOUR

    host = _parsed(parse_host, args.host, "--host")
    port = _parsed(parse_port, args.port, "--port")
    token = args.token.strip()
    if not token or any(char.isspace() for char in token):
        raise UsageError(f"--token {args.token!r}: not one word")
    api = Simulator(token=token)
    for video_id, (_, lifecycle) in TOUR.items():
        api.add_video(video_id, **lifecycle)
    server = SimulatorServer(api, host=host, port=port)
    stopped = threading.Event()
    previous = {
        number: signal.signal(number, lambda *_: stopped.set())
        for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        try:
            url = server.start()
        except OSError as exc:
            # asyncio words a refused bind at length; the system's own words are enough.
            number = exc.errno or 0  # negative for a host name that cannot be resolved
            reason = os.strerror(number) if number > 0 else exc.strerror or exc
            raise UsageError(f"cannot listen on {host} port {port}: {reason}") from None
        try:
            _say_how_to_use(url, token)
            stopped.wait()
        finally:
            server.stop()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


def _say_how_to_use(url: str, token: str) -> None:
    from tracker.simulator.lifecycles import TOUR

    videos = "\n".join(f"  {video_id}: {kind}" for video_id, (kind, _) in TOUR.items())
    say(
        f"Simulated video API at {url}, taking the token {token}; Ctrl-C stops it.\n"
        "Point tracker at it from another terminal, on a database of its own:\n\n"
        f"  export TRACKER_API_BASE={shlex.quote(url)} TRACKER_API_TOKEN={shlex.quote(token)} "
        f"TRACKER_DATABASE_URL={SIMULATED_DATABASE_URL}\n"
        f"  tracker add {' '.join(TOUR)}\n"
        "  tracker run --interval 2 --until-done\n"
        "  tracker serve    (the dashboard, at http://127.0.0.1:8080/)\n\n"
        f"Each GET of a video moves it one step on. Its videos:\n{videos}\n"
        "POST /v1/videos makes more: a prompt with 'fail' in it fails, 'vanish' vanishes, "
        "'relay' or 'envelope' answers in that shape; any other completes."
    )
    sys.stdout.flush()
