"""Every command, its options and the settings it reads, in one table."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from tracker._version import __version__
from tracker.cli import operating, polling, reporting, tasks
from tracker.cli.common import PROG
from tracker.cli.flags import (
    Parser,
    count,
    global_options,
    json_flags,
    json_or_csv,
    register_flags,
    settings_flags,
)
from tracker.core.report import KEY_NAMES
from tracker.settings import OPTIONS
from tracker.settings.commands import (
    DOWNLOAD,
    EVERY_COMMAND,
    FOLLOW_UPS,
    OPERATING,
    POLL,
    REGISTER,
    REMOVE,
    RUN,
    SERVE,
    SERVE_ALONE,
)
from tracker.store.sandbox import DEFAULT_TIMEOUT_SECONDS

SIMULATOR_PORT = 8000
SIMULATOR_TOKEN = "sim-token"
SERVING_TITLE = (
    "the HTTP service (server tokens come from the environment only: TRACKER_SERVER_TOKENS or "
    "TRACKER_SERVER_TOKENS_FILE)"
)


def build_parser() -> argparse.ArgumentParser:
    common = global_options(OPTIONS["database_url"].describe())
    parser = Parser(
        prog=PROG,
        parents=[common],
        description="Watch asynchronous video-generation tasks until they finish; every status "
        "they go through is kept in SQL.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=Parser
    )

    def command(
        name: str,
        help_text: str,
        handler: Callable[[argparse.Namespace], int],
        fields: Sequence[str] = (),
        options: Parser = common,
        *,
        reads_only: bool = False,
    ) -> Any:
        """A command; ``reads_only`` for one that never writes the database (tracker_for)."""
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[options])
        sub.set_defaults(handler=handler, fields=(*EVERY_COMMAND, *fields), reads_only=reads_only)
        return sub

    add = command(
        "add",
        "register task IDs (idempotent; one invalid ID rejects the whole call)",
        tasks.add,
        REGISTER,
    )
    add.add_argument("ids", nargs="*", metavar="ID")
    register_flags(add, "the tasks added")
    add.add_argument("--label", help="a label stored with every new task")
    add.add_argument(
        "--provider",
        help="the provider (API and key) the new tasks are polled on, as named in the daemon's "
        "--config file (default: default)",
    )
    add.add_argument(
        "--metadata",
        metavar="JSON",
        help="a JSON object (at most 16 KiB) stored with every new task, e.g. '{\"user\": 42}'",
    )
    add.add_argument(
        "--file",
        metavar="PATH",
        help="read IDs from a file, one per line ('-': "
        "standard input); blank lines and lines starting with # are skipped",
    )

    remove = command(
        "remove",
        "stop watching tasks (finish_reason removed); history is kept",
        tasks.remove,
        REMOVE,
    )
    remove.add_argument("ids", nargs="+", metavar="ID")
    settings_flags(remove, REMOVE, "the events a removed task owes (delivered by tracker run)")

    acting = (
        (
            "poll-now",
            "make unfinished tasks due at once: a running daemon polls them within a second",
            tasks.poll_now,
        ),
        (
            "reopen",
            "watch ended tasks again (failed, not found, timed out, removed; not completed): "
            "due now, give-up-after counted from now, history kept",
            tasks.reopen,
        ),
    )
    for name, about, handler in acting:
        command(name, about, handler).add_argument("ids", nargs="+", metavar="ID")

    listing = command(
        "list",
        "tasks with latest status, progress, polls, last poll; newest first, "
        f"{tasks.TERMINAL_PAGE} at a time on a terminal",
        tasks.listing,
        reads_only=True,
    )
    listing.add_argument("--status", help="only tasks whose last status is this (any case)")
    listing.add_argument("--label", help="only tasks with this label")
    listing.add_argument("--provider", help="only tasks of this provider")
    state = listing.add_mutually_exclusive_group()
    state.add_argument("--finished", action="store_true", help="only finished tasks")
    state.add_argument("--unfinished", action="store_true", help="only unfinished tasks")
    listing.add_argument(
        "--limit",
        type=count,
        metavar="N",
        help=f"at most N tasks (default: {tasks.TERMINAL_PAGE} on a terminal, else all)",
    )
    listing.add_argument(
        "--after", metavar="ID", help="the tasks after this one (where a previous page ended)"
    )
    json_flags(listing, "tasks")

    history = command(
        "history", "one task's snapshots, oldest first", tasks.history, reads_only=True
    )
    history.add_argument("task_id", metavar="ID")
    part = history.add_mutually_exclusive_group()
    part.add_argument("--limit", type=count, metavar="N", help="only the first N snapshots")
    part.add_argument("--tail", type=count, metavar="N", help="only the last N snapshots")
    json_flags(history, "snapshots")

    poll = command(
        "poll", "one pass: poll every due unfinished task once, write, exit", polling.poll, POLL
    )
    poll.add_argument("--all", action="store_true", help="poll every unfinished task, due or not")
    settings_flags(poll, POLL, "polling")

    run = command("run", "the daemon: poll until stopped (SIGTERM or Ctrl-C)", polling.run, RUN)
    run.add_argument(
        "--until-done", action="store_true", help="exit 0 once no unfinished task is left"
    )
    settings_flags(run, POLL, "polling")
    settings_flags(
        run,
        FOLLOW_UPS,
        "after a task finishes (secrets come from the environment only: TRACKER_NOTIFY_SECRET "
        "signs notifications, TRACKER_WEBHOOK_SECRET checks the API's webhooks)",
    )
    settings_flags(run, OPERATING, "operating it")
    settings_flags(run, SERVE, SERVING_TITLE)

    serve = command(
        "serve",
        "the HTTP API and the dashboard alone, beside daemons anywhere (the database is shared)",
        operating.serve,
        SERVE_ALONE,
    )
    settings_flags(
        serve, SERVE, SERVING_TITLE, aliases={"http_host": ("--host",), "http_port": ("--port",)}
    )
    settings_flags(serve, REMOVE, "the events a task removed over HTTP owes (sent by tracker run)")
    register_flags(serve, "tasks registered over HTTP")

    download = command(
        "download",
        "fetch a completed task's files now, retrying until its assets expire",
        polling.download,
        DOWNLOAD,
    )
    download.add_argument("task_id", metavar="ID")
    download.add_argument("--json", action="store_true", help="a JSON array of downloads rows")
    settings_flags(download, DOWNLOAD, "downloading")

    daemons = command(
        "daemons",
        "the daemons at work on the database: where, since when, what they hold, lost ones",
        operating.daemons,
        reads_only=True,
    )
    daemons.add_argument("--json", action="store_true", help="a JSON array of daemons rows")

    stats = command(
        "stats",
        "a summary: tasks by state, backlog, recent polls, downloads",
        operating.stats,
        reads_only=True,
    )
    stats.add_argument("--json", action="store_true", help="one JSON object")

    watch = command(
        "watch",
        "a live view of the unfinished tasks, refreshed in place",
        operating.watch,
        reads_only=True,
    )
    watch.add_argument(
        "--refresh", default="2", metavar="SECONDS", help="time between two refreshes (default 2)"
    )
    watch.add_argument(
        "--limit", default="40", metavar="N", help="tasks shown at most (default 40)"
    )

    prune = command(
        "prune",
        "delete old snapshots, keeping each task's first and last snapshot and every status change",
        operating.prune,
    )
    prune.add_argument(
        "--older-than",
        required=True,
        metavar="AGE",
        help="prune snapshots older than this (90s, 15m, 24h, 30d)",
    )
    prune.add_argument("--dry-run", action="store_true", help="count only, delete nothing")

    export = command(
        "export",
        "tasks and snapshots as CSV or JSON lines, for other tools",
        operating.export,
        reads_only=True,
    )
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
        "--output", metavar="DIR", help="write tasks.<format> and snapshots.<format> into DIR"
    )
    export.add_argument(
        "--since", metavar="WHEN", help="only rows since a date (2026-11-01) or an age (7d)"
    )

    report = command("report", reporting.ABOUT, reporting.report, reads_only=True)
    when = "an age (36h, 7d) or a date (2026-11-01; UTC unless it names a zone)"
    report.add_argument("--since", metavar="WHEN", help=f"registered since {when}; default 7d")
    report.add_argument("--until", metavar="WHEN", help=f"and before {when}; default now")
    report.add_argument("--by", metavar="KEY[,KEY…]", help=f"a row per group of {KEY_NAMES}")
    json_or_csv(report, "rows")

    sql = command(
        "sql",
        "run one read-only SQL statement and print the result",
        operating.sql,
        reads_only=True,
    )
    sql.add_argument("query", metavar="QUERY")
    sql.add_argument(
        "--timeout",
        metavar="DURATION",
        help=f"stop the query after this long (30s, 5m; default {DEFAULT_TIMEOUT_SECONDS:g}s)",
    )
    json_or_csv(sql, "result rows")

    database = command(
        "db", "database schema: 'upgrade' migrates to head, 'current' shows it", operating.db
    )
    database.add_argument("action", choices=["upgrade", "current"])

    demo = command(
        "demo",
        "run the daemon against a built-in simulated API, watch it live, then query what it "
        "stored; needs no token and no network",
        operating.demo,
        options=global_options(
            f"the demo's SQLite database (default: {operating.DEMO_DATABASE_URL}; "
            "TRACKER_DATABASE_URL is not read): made afresh, replacing a previous demo's; "
            "any other file there is left alone"
        ),
    )
    without_database = tuple(field for field in EVERY_COMMAND if field != "database_url")
    demo.set_defaults(fields=without_database)

    simulator = command(
        "simulator",
        "serve a simulated video API (videos that complete, fail, vanish, or answer as relays "
        "do) until Ctrl-C or SIGTERM, and print how to point tracker at it",
        operating.simulator,
        options=global_options(None),
    )
    simulator.set_defaults(fields=without_database)
    simulator.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)"
    )
    simulator.add_argument(
        "--port",
        default=str(SIMULATOR_PORT),
        help=f"the port to listen on (default {SIMULATOR_PORT}; 0 picks a free one)",
    )
    simulator.add_argument(
        "--token",
        default=SIMULATOR_TOKEN,
        metavar="TEXT",
        help=f"the bearer token it accepts (default {SIMULATOR_TOKEN}); not a secret",
    )
    return parser
