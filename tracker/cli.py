"""The ``tracker`` command (SPEC §4): parsing arguments and printing results, nothing else.

Exit codes: 0 success, 2 bad usage or bad input (one line on stderr, nothing written), 1 any
other failure.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TextIO

from tracker import db, logs, render
from tracker.app import Tracker
from tracker.config import (
    FOLLOW_UP_OPTIONS,
    OPERATING_OPTIONS,
    OPTIONS_BY_FIELD,
    Settings,
    load_settings,
    parse_duration,
)
from tracker.errors import TrackerError, UsageError
from tracker.ids import check_task_id
from tracker.models import Stats, Task

PROG = "tracker"
_POLLING_FIELDS = (
    "api_base",
    "poll_interval",
    "concurrency",
    "request_timeout",
    "give_up_after",
    "proxy",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    # Global options are accepted before and after the command; SUPPRESS keeps a value given
    # in one place from being reset by the default of the other.
    common = _Parser(add_help=False)
    common.add_argument(
        "--db",
        dest="database_url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=OPTIONS_BY_FIELD["database_url"].describe(),
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more log output (twice for the libraries' debug output too)",
    )
    common.add_argument(
        "-q", "--quiet", action="count", default=argparse.SUPPRESS, help="less log output"
    )
    common.add_argument(
        "--log-format",
        dest="log_format",
        metavar="FORMAT",
        default=argparse.SUPPRESS,
        help=OPTIONS_BY_FIELD["log_format"].describe(),
    )

    polling = _Parser(add_help=False)
    for field in _POLLING_FIELDS:
        option = OPTIONS_BY_FIELD[field]
        polling.add_argument(option.flag, dest=field, metavar="VALUE", help=option.describe())
    polling.add_argument(
        "--token-file",
        metavar="PATH",
        help="read the API token from this file (env: TRACKER_API_TOKEN_FILE); the token itself "
        "comes from TRACKER_API_TOKEN and is never a flag",
    )

    parser = _Parser(
        prog=PROG,
        parents=[common],
        description="Watch asynchronous video-generation tasks until they finish; every status "
        "they go through is kept in SQL.",
    )
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    def command(name: str, help_text: str, *parents: _Parser) -> Any:
        return commands.add_parser(
            name, help=help_text, description=help_text, parents=[common, *parents]
        )

    add = command("add", "register task IDs (idempotent; one invalid ID rejects the whole call)")
    add.add_argument("ids", nargs="*", metavar="ID")
    add.add_argument("--label", help="a label stored with every new task")
    add.add_argument(
        "--file",
        metavar="PATH",
        help="read IDs from a file, one per line ('-': "
        "standard input); blank lines and lines starting with # are skipped",
    )
    add.set_defaults(handler=_add)

    remove = command("remove", "stop watching tasks (finish_reason removed); history is kept")
    remove.add_argument("ids", nargs="+", metavar="ID")
    remove.set_defaults(handler=_remove)

    listing = command("list", "watched tasks with latest status, progress, polls, last poll")
    listing.add_argument("--status", help="only tasks whose last status is this (any case)")
    listing.add_argument("--unfinished", action="store_true", help="only unfinished tasks")
    listing.add_argument("--json", action="store_true", help="a JSON array of tasks rows")
    listing.set_defaults(handler=_list)

    history = command("history", "one task's snapshots, oldest first")
    history.add_argument("task_id", metavar="ID")
    history.add_argument("--json", action="store_true", help="a JSON array of snapshots rows")
    history.set_defaults(handler=_history)

    poll = command("poll", "one pass: poll every due unfinished task once, write, exit", polling)
    poll.add_argument("--all", action="store_true", help="poll every unfinished task, due or not")
    record = OPTIONS_BY_FIELD["record"]
    poll.add_argument(record.flag, dest=record.field, metavar="VALUE", help=record.describe())
    poll.set_defaults(handler=_poll)

    after = _Parser(add_help=False)
    group = after.add_argument_group(
        "after a task finishes",
        "secrets come from the environment only: TRACKER_NOTIFY_SECRET signs notifications, "
        "TRACKER_WEBHOOK_SECRET checks the API's webhooks",
    )
    for option in FOLLOW_UP_OPTIONS:
        group.add_argument(option.flag, dest=option.field, metavar="VALUE", help=option.describe())

    operating = _Parser(add_help=False)
    group = operating.add_argument_group("operating it")
    for option in OPERATING_OPTIONS:
        group.add_argument(option.flag, dest=option.field, metavar="VALUE", help=option.describe())

    run = command(
        "run", "the daemon: poll until stopped (SIGTERM or Ctrl-C)", polling, after, operating
    )
    run.add_argument(
        "--until-done", action="store_true", help="exit 0 once no unfinished task is left"
    )
    run.set_defaults(handler=_run)

    download = command(
        "download",
        "fetch a completed task's files now, retrying until its assets expire",
        polling,
    )
    download.add_argument("task_id", metavar="ID")
    for field in ("download_dir", "download_variants"):
        option = OPTIONS_BY_FIELD[field]
        download.add_argument(option.flag, dest=field, metavar="VALUE", help=option.describe())
    download.add_argument("--json", action="store_true", help="a JSON array of downloads rows")
    download.set_defaults(handler=_download)

    stats = command("stats", "a summary: tasks by state, backlog, recent polls, downloads")
    stats.add_argument("--json", action="store_true", help="one JSON object")
    stats.set_defaults(handler=_stats)

    watch = command("watch", "a live view of the unfinished tasks, refreshed in place")
    watch.add_argument(
        "--refresh",
        default="2",
        metavar="SECONDS",
        help="seconds between two refreshes (default 2)",
    )
    watch.add_argument(
        "--limit", default="40", metavar="N", help="tasks shown at most (default 40)"
    )
    watch.set_defaults(handler=_watch)

    prune = command(
        "prune",
        "delete old snapshots of finished tasks, keeping each task's "
        "first and last snapshot and every status change",
    )
    prune.add_argument(
        "--older-than",
        required=True,
        metavar="AGE",
        help="prune snapshots older than this (90s, 15m, 24h, 30d)",
    )
    prune.add_argument("--dry-run", action="store_true", help="count only, delete nothing")
    prune.set_defaults(handler=_prune)

    export = command("export", "tasks and snapshots as CSV or JSON lines, for other tools")
    export.add_argument(
        "--format",
        dest="export_format",
        choices=["csv", "jsonl"],
        default="jsonl",
        help="csv or jsonl (default jsonl)",
    )
    export.add_argument(
        "--table",
        choices=["tasks", "snapshots"],
        default="snapshots",
        help="the table written to standard output (default snapshots)",
    )
    export.add_argument(
        "--output",
        metavar="DIR",
        help="write tasks.<format> and snapshots.<format> into DIR instead",
    )
    export.add_argument(
        "--since",
        metavar="WHEN",
        help="only rows since a date (2026-11-01, ISO 8601) or an age (7d)",
    )
    export.set_defaults(handler=_export)

    sql = command("sql", "run one read-only SQL statement and print the result")
    sql.add_argument("query", metavar="QUERY")
    output = sql.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="a JSON array of result rows")
    output.add_argument("--csv", action="store_true", help="CSV with a header line")
    sql.set_defaults(handler=_sql)

    database = command("db", "database schema: 'upgrade' migrates to head, 'current' shows it")
    database.add_argument("action", choices=["upgrade", "current"])
    database.set_defaults(handler=_db)

    demo = command(
        "demo",
        "run the daemon against a built-in simulated API on a temporary "
        "database; needs no token and no network",
    )
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args, Settings())
    try:
        args.settings = _load(args)
        _configure_logging(args, args.settings)
        with db.reported_errors():
            code: int = args.handler(args)
    except UsageError as exc:
        _fail(exc)
        return 2
    except TrackerError as exc:
        _fail(exc)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (e.g. `head`) went away: not an error of ours. Silence the final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return code


def _fail(exc: Exception) -> None:
    if logs.writing_json():
        # The last line of a failed run belongs in the log pipeline like every other line.
        logging.getLogger(PROG).error("%s", exc)
    else:
        print(f"{PROG}: error: {exc}", file=sys.stderr)


def _configure_logging(args: argparse.Namespace, settings: Settings, shift: int = 0) -> None:
    verbosity = getattr(args, "verbose", 0) - getattr(args, "quiet", 0) + shift
    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(
        max(-2, verbosity), logging.DEBUG
    )
    libraries_level = logging.DEBUG if verbosity >= 2 else max(level, logging.WARNING)
    secrets = [
        s.reveal()
        for s in (settings.token, settings.notify_secret, settings.webhook_secret)
        if s is not None
    ] + settings.proxy.secrets()
    logs.configure(level, libraries_level, settings.log_format, secrets)


def _load(args: argparse.Namespace) -> Settings:
    flags = {field: getattr(args, field, None) for field in OPTIONS_BY_FIELD}
    flags["token_file"] = getattr(args, "token_file", None)
    return load_settings(flags)


def _settings(args: argparse.Namespace) -> Settings:
    settings: Settings = args.settings
    return settings


def _tracker(args: argparse.Namespace) -> Tracker:
    return Tracker.from_settings(_settings(args))


def _print(text: str, stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout)


def _add(args: argparse.Namespace) -> int:
    task_ids = list(args.ids)
    if args.file is not None:
        task_ids += _read_id_file(args.file)
    if not task_ids:
        raise UsageError("no task IDs given (as arguments or with --file)")
    with _tracker(args) as tracker:
        result = tracker.add(task_ids, label=args.label)
    message = f"added {len(result.added)} task{'s' * (len(result.added) != 1)}"
    if result.existing:
        message += f"; {len(result.existing)} already registered"
    _print(message)
    return 0


def _read_id_file(path: str) -> list[str]:
    source = "standard input" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise UsageError(f"--file {path!r}: cannot read: {reason}") from None
    task_ids = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            task_ids.append(check_task_id(stripped))
        except UsageError as exc:
            raise UsageError(f"{exc} (line {number} of {source})") from None
    return task_ids


def _remove(args: argparse.Namespace) -> int:
    with _tracker(args) as tracker:
        result = tracker.remove(args.ids)
    message = f"removed {len(result.removed)} task{'s' * (len(result.removed) != 1)}"
    if result.already_finished:
        message += f"; {len(result.already_finished)} had already finished"
    _print(message)
    return 0


def _list(args: argparse.Namespace) -> int:
    with _tracker(args) as tracker:
        tasks = tracker.tasks(status=args.status, unfinished=args.unfinished)
    if args.json:
        _print(render.to_json([asdict(task) for task in tasks]))
        return 0
    columns = [
        "task_id",
        "status",
        "progress",
        "polls",
        "errors",
        "last_polled_at",
        "finish_reason",
        "label",
    ]
    rows = [
        [
            t.task_id,
            t.status,
            t.progress,
            t.poll_count,
            t.error_count,
            t.last_polled_at,
            t.finish_reason,
            t.label,
        ]
        for t in tasks
    ]
    _print(render.table(columns, rows) if tasks else "no tasks")
    return 0


def _history(args: argparse.Namespace) -> int:
    with _tracker(args) as tracker:
        snapshots = tracker.history(check_task_id(args.task_id))
    if args.json:
        _print(render.to_json([asdict(snapshot) for snapshot in snapshots]))
        return 0
    columns = ["polled_at", "http_status", "status", "progress", "latency_ms", "finished", "error"]
    rows = [
        [s.polled_at, s.http_status, s.status, s.progress, s.latency_ms, s.finished, s.error]
        for s in snapshots
    ]
    _print(render.table(columns, rows) if snapshots else "not polled yet")
    return 0


def _poll(args: argparse.Namespace) -> int:
    settings = _settings(args)
    settings.require_token()
    with Tracker.from_settings(settings) as tracker:
        summary = tracker.poll_once(all_unfinished=args.all)
    _print(
        f"polled {summary.polled} task{'s' * (summary.polled != 1)}: "
        f"{summary.finished} finished, {summary.errors} failed polls"
    )
    if summary.unwritten:
        _fail(TrackerError(f"{summary.unwritten} poll results could not be written"))
        return 1
    if summary.refused:
        _fail(
            TrackerError("the API refused the token (HTTP 401/403); tasks were left as they were")
        )
        return 1
    if summary.paused_until is not None:
        _print(
            f"the API asked to wait until {summary.paused_until:%Y-%m-%d %H:%M:%S} UTC; "
            "the tasks not polled stay due",
            sys.stderr,
        )
    return 0


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    settings.require_token()
    with Tracker.from_settings(settings) as tracker:
        tracker.run(until_done=args.until_done)
    return 0


def _download(args: argparse.Namespace) -> int:
    settings = _settings(args)
    settings.require_token()
    with Tracker.from_settings(settings) as tracker:
        rows = tracker.download(check_task_id(args.task_id), settings.download_variants)
    if args.json:
        _print(render.to_json([asdict(row) for row in rows]))
    else:
        columns = ["variant", "state", "path", "size_bytes", "sha256", "last_error"]
        _print(
            render.table(
                columns, [[getattr(row, c) for c in columns] for row in rows], max_width=100
            )
        )
    return 0 if all(row.state == "done" for row in rows) else 1


def _stats(args: argparse.Namespace) -> int:
    with _tracker(args) as tracker:
        stats = tracker.stats()
    if args.json:
        _print(json.dumps({k: render.jsonable(v) for k, v in asdict(stats).items()}, indent=2))
    else:
        from tracker.watch import summary_lines  # rich is loaded by the commands that draw only

        _print("\n".join(summary_lines(stats)))
    return 0


def _watch(args: argparse.Namespace) -> int:
    from tracker.watch import Watcher

    refresh = _number(args.refresh, "--refresh", float)
    limit = int(_number(args.limit, "--limit", int))
    with _tracker(args) as tracker:

        def read() -> tuple[Stats, list[Task]]:
            with db.reported_errors():
                return tracker.stats(), tracker.tasks(unfinished=True, limit=limit)

        with contextlib.suppress(KeyboardInterrupt):
            Watcher(read, refresh, limit).run()
    return 0


def _number(raw: str, flag: str, kind: type[float] | type[int]) -> float:
    try:
        value = kind(raw)
    except ValueError:
        raise UsageError(f"{flag} {raw!r}: not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{flag} {raw!r}: must be a number more than zero")
    return value


def _prune(args: argparse.Namespace) -> int:
    try:
        older_than = parse_duration(args.older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than {args.older_than!r}: {exc}") from None
    with _tracker(args) as tracker:
        count = tracker.prune(older_than, dry_run=args.dry_run)
    _print(f"{'would prune' if args.dry_run else 'pruned'} {count:,} snapshot{'s' * (count != 1)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    since = _since(args.since)
    with _tracker(args) as tracker:
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
            _print(f"{path}: {count:,} rows", sys.stderr)
    return 0


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    if raw.strip().replace(".", "", 1).isdigit():
        # Read as seconds, `--since 2026` would quietly mean the last half hour.
        raise UsageError(f"--since {raw!r}: an age needs a unit (7d, 12h); a date is 2026-11-01")
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(raw))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"--since {raw!r}: not a date (2026-11-01) or an age (7d)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _write_rows(rows: Iterator[dict[str, Any]], export_format: str, out: TextIO) -> int:
    count = 0
    writer = None
    for row in rows:
        if export_format == "jsonl":
            out.write(
                json.dumps({k: render.jsonable(v) for k, v in row.items()}, ensure_ascii=False)
                + "\n"
            )
        else:
            if writer is None:
                writer = csv.writer(out, lineterminator="\n")
                writer.writerow(row.keys())
            writer.writerow(render.csv_cell(value) for value in row.values())
        count += 1
    return count


def _sql(args: argparse.Namespace) -> int:
    with _tracker(args) as tracker:
        result = tracker.sql(args.query)
    if args.json:
        _print(render.to_json(render.query_rows(result.columns, result.rows)))
    elif args.csv:
        sys.stdout.write(render.to_csv(result.columns, result.rows))
    else:
        _print(render.table(result.columns, result.rows, max_width=80))
        _print(f"({len(result.rows)} row{'s' * (len(result.rows) != 1)})")
    return 0


def _db(args: argparse.Namespace) -> int:
    settings = _settings(args)
    engine = db.create_engine(settings.database_url)
    try:
        if args.action == "upgrade":
            db.upgrade(engine)
        revision = db.current_revision(engine)
    finally:
        engine.dispose()
    head = db.head_revision()
    state = "head" if revision == head else f"head is {head}"
    _print(f"{db.describe(engine)}: revision {revision or 'none'} ({state})")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tracker.demo import run_demo

    # The live view already shows what the daemon's INFO lines would say.
    _configure_logging(args, _settings(args), shift=-1)
    return run_demo(sys.stdout)
