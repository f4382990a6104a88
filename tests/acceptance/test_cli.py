"""The installed `tracker` command, run as a subprocess the way users run it."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import TRACKER, Run, assert_usage_error
from tests.acceptance.test_serve import serving
from tests.conftest import API
from tests.web import AUTH
from tracker._version import __version__
from tracker.core.models import Snapshot, Task
from tracker.simulator import content_of
from tracker.store import migrations

DOCUMENTED_TASK_COLUMNS = {
    "task_id",
    "label",
    "status",
    "progress",
    "finished",
    "finish_reason",
    "registered_at",
    "last_polled_at",
    "next_poll_at",
    "finished_at",
    "poll_count",
    "error_count",
    "last_error",
    "model",
    "seconds",
    "size",
    "created_at",
    "completed_at",
    "expires_at",
}
DOCUMENTED_SNAPSHOT_COLUMNS = {
    "id",
    "task_id",
    "polled_at",
    "http_status",
    "status",
    "progress",
    "error",
    "body",
    "finished",
    "latency_ms",
}


def api_env(api: API, **extra: str) -> dict[str, str]:
    return {
        "TRACKER_API_BASE": api.url,
        "TRACKER_API_TOKEN": api.token,
        "TRACKER_POLL_INTERVAL": "0.1",
        **extra,
    }


def count_tasks(workdir: Path) -> int:
    database = workdir / "tracker.db"
    if not database.exists():
        return 0
    return int(sqlite3.connect(database).execute("SELECT COUNT(*) FROM tasks").fetchone()[0])


def test_help_lists_every_command(tracker: Run) -> None:
    """`tracker --help` names every documented command."""
    result = tracker("--help")
    assert result.returncode == 0
    for command in ("add", "remove", "list", "history", "poll", "run", "sql", "db", "demo"):
        assert command in result.stdout


def test_version_prints_the_installed_version(tracker: Run, workdir: Path) -> None:
    """`tracker --version` prints the package's version and exits 0, creating no database."""
    result = tracker("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"tracker {__version__}")
    assert __version__[:1].isdigit()
    assert not (workdir / "tracker.db").exists()


def test_python_dash_m_tracker_is_the_same_command(workdir: Path) -> None:
    """`python -m tracker` works where the script is not on PATH."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tracker", *args],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert run("add", "video_a").returncode == 0
    assert run("list").stdout.splitlines()[1].split()[0] == "video_a"


def test_add_from_arguments_file_and_stdin_is_idempotent(tracker: Run, workdir: Path) -> None:
    """IDs come from arguments, --file PATH and --file -; adding again changes nothing."""
    ids_file = workdir / "ids.txt"
    ids_file.write_text("# generated overnight\nvideo_b\n\n  video_c  \nvideo_a\n")
    first = tracker("add", "video_a", "sora-2:task_01H", "--label", "night batch")
    assert (first.returncode, first.stdout.strip()) == (0, "added 2 tasks")
    from_file = tracker("add", "--file", str(ids_file))
    assert from_file.stdout.strip() == "added 2 tasks; 1 already registered"
    from_stdin = tracker("add", "--file", "-", stdin="video_d\nvideo_a\n")
    assert from_stdin.stdout.strip() == "added 1 task; 1 already registered"
    again = tracker("add", "video_a", "video_b")
    assert again.stdout.strip() == "added 0 tasks; 2 already registered"
    listed = json.loads(tracker("list", "--json").stdout)
    assert sorted(row["task_id"] for row in listed) == [
        "sora-2:task_01H",
        "video_a",
        "video_b",
        "video_c",
        "video_d",
    ]
    labels = {row["task_id"]: row["label"] for row in listed}
    assert labels["video_a"] == "night batch" and labels["video_b"] is None


def test_a_database_locked_past_the_busy_timeout_is_one_line_and_exit_1(
    tracker: Run, workdir: Path
) -> None:
    """Another writer holding SQLite's lock past the 5 s wait: `tracker add` says so in one
    line, exits 1, and writes nothing (no traceback)."""
    assert tracker("add", "video_first").returncode == 0
    blocker = sqlite3.connect(workdir / "tracker.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        result = tracker("add", "video_second")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert result.returncode == 1, result
    assert result.stderr.strip().splitlines() == [
        "tracker: error: the database failed: database is locked"
    ]
    assert count_tasks(workdir) == 1


@pytest.mark.parametrize(
    ("args", "stdin", "fragments"),
    [
        (("add", "ok_1", "bad id", "ok_2"), None, ("invalid task ID 'bad id'", "whitespace")),
        (("add", "ok_1", "../admin"), None, ("'../admin'", "'/'")),
        (("add", "--file", "-"), "ok_1\nok 2\n", ("'ok 2'", "line 2 of standard input")),
        (("add", "--file", "missing.txt"), None, ("--file 'missing.txt'", "cannot read")),
        (("add",), None, ("no task IDs given",)),
    ],
)
def test_add_is_all_or_nothing(
    tracker: Run,
    workdir: Path,
    args: tuple[str, ...],
    stdin: str | None,
    fragments: tuple[str, ...],
) -> None:
    """One invalid ID or an unreadable file: exit 2, one line naming it, nothing written."""
    result = tracker(*args, stdin=stdin)
    assert_usage_error(result, *fragments)
    assert not (workdir / "tracker.db").exists()


@pytest.mark.parametrize(
    ("args", "env", "fragments"),
    [
        (("--db", "nonsense", "list"), {}, ("--db 'nonsense'",)),
        (("list", "--db", "sqlite:////no/such/dir/x.db"), {}, ("does not exist",)),
        (("poll", "--interval", "soon"), {"TRACKER_API_TOKEN": "sk-x"}, ("--interval 'soon'",)),
        (("run", "--give-up-after=-5m"), {"TRACKER_API_TOKEN": "sk-x"}, ("--give-up-after '-5m'",)),
        (("run",), {"TRACKER_CONCURRENCY": "many"}, ("TRACKER_CONCURRENCY 'many'",)),
        (("run",), {}, ("no API token", "TRACKER_API_TOKEN")),
        (("poll",), {}, ("no API token",)),
        (("poll", "--token-file", "nope.txt"), {}, ("--token-file 'nope.txt'",)),
        (("history", "never-added"), {}, ("no database at", "`tracker add` creates one")),
        (("remove", "never-added"), {}, ("unknown task ID 'never-added'",)),
        (("frobnicate",), {}, ("invalid choice: 'frobnicate'",)),
        (("run", "--retain=-5d"), {"TRACKER_API_TOKEN": "sk-x"}, ("--retain '-5d'",)),
        (
            ("run", "--retain", "forever"),
            {"TRACKER_API_TOKEN": "sk-x"},
            ("--retain 'forever'", "not a duration"),
        ),
        (("--log-format", "xml", "list"), {}, ("--log-format 'xml'", "text or json")),
        (("list",), {"TRACKER_LOG_FORMAT": "yaml"}, ("TRACKER_LOG_FORMAT 'yaml'",)),
        (
            ("poll", "--record", "sometimes"),
            {"TRACKER_API_TOKEN": "sk-x"},
            ("--record 'sometimes'", "all or changes"),
        ),
        (("prune", "--older-than", "soon"), {}, ("--older-than 'soon'", "not a duration")),
        (("prune", "--older-than=-30d"), {}, ("--older-than '-30d'",)),
        (("watch", "--refresh", "0"), {}, ("--refresh '0'", "more than zero")),
        (("watch", "--refresh", "nan"), {}, ("--refresh 'nan'", "not a duration")),
        (("watch", "--limit", "inf"), {}, ("--limit 'inf'", "not a whole number")),
        (("export", "--since", "last tuesday"), {}, ("--since 'last tuesday'",)),
        (("export", "--since", "2026"), {}, ("--since '2026'", "needs a unit")),
        (
            ("run", "--notify-url", "http://exa mple.com/hook"),
            {"TRACKER_API_TOKEN": "sk-x"},
            ("--notify-url", "spaces"),
        ),
        (
            ("run", "--webhook-port", "8080"),
            {"TRACKER_API_TOKEN": "sk-x", "TRACKER_WEBHOOK_SECRET": "   "},
            ("TRACKER_WEBHOOK_SECRET", "at least 16 bytes"),
        ),
        (
            ("run", "--download-dir", "/proc/nope/videos"),
            {"TRACKER_API_TOKEN": "sk-x"},
            ("--download-dir '/proc/nope/videos'", "cannot be created"),
        ),
        (
            ("run", "--download-dir", "/proc"),
            {"TRACKER_API_TOKEN": "sk-x"},
            ("--download-dir '/proc'", "not writable"),
        ),
        (
            ("run", "--download-variants", "video,poster"),
            {"TRACKER_API_TOKEN": "sk-x"},
            ("--download-variants 'video,poster'",),
        ),
        (
            ("run", "--notify-url", "mailto:me"),
            {"TRACKER_API_TOKEN": "sk-x"},
            ("--notify-url 'mailto:me'", "not an http"),
        ),
        (
            ("run", "--on-finish", "notify 'unclosed"),
            {"TRACKER_API_TOKEN": "sk-x"},
            ("--on-finish", "not a command line"),
        ),
        (
            ("run", "--webhook-port", "8080"),
            {"TRACKER_API_TOKEN": "sk-x"},
            ("--webhook-port needs TRACKER_WEBHOOK_SECRET",),
        ),
        (
            ("run", "--webhook-port", "80000"),
            {"TRACKER_API_TOKEN": "sk-x"},
            ("--webhook-port '80000'",),
        ),
        (
            ("run",),
            {"TRACKER_API_TOKEN": "sk-x", "TRACKER_NOTIFY_SECRET": "whsec_!!"},
            ("TRACKER_NOTIFY_SECRET", "base64"),
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    tracker: Run, args: tuple[str, ...], env: dict[str, str], fragments: tuple[str, ...]
) -> None:
    """Bad settings, a missing token, unknown IDs, unknown commands: exit 2, no traceback."""
    assert_usage_error(tracker(*args, env=env), *fragments)


def test_poll_list_and_history_through_the_simulator(tracker: Run, api: API) -> None:
    """`poll` writes one snapshot per task; list/history --json use the documented column names."""
    video = api.simulator.add_video("video_cli", steps=2)
    env = api_env(api)
    assert tracker("add", video, env=env).returncode == 0
    polled = tracker("poll", env=env)
    assert (polled.returncode, polled.stdout.strip()) == (
        0,
        "polled 1 task: 0 finished, 0 failed polls",
    )
    [task] = json.loads(tracker("list", "--json").stdout)
    assert set(task) == {field.name for field in fields(Task)} >= DOCUMENTED_TASK_COLUMNS
    assert (task["status"], task["poll_count"], task["finished"]) == ("queued", 1, False)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", task["registered_at"])
    [snapshot] = json.loads(tracker("history", video, "--json").stdout)
    snapshot_fields = {field.name for field in fields(Snapshot)}
    assert set(snapshot) == snapshot_fields == DOCUMENTED_SNAPSHOT_COLUMNS
    assert snapshot["body"]["id"] == video and snapshot["error"] is None
    table = tracker("list").stdout.splitlines()
    assert table[0].split()[:3] == ["task_id", "status", "progress"]
    assert video in table[1] and "queued" in table[1]
    unfinished = json.loads(tracker("list", "--unfinished", "--status", "QUEUED", "--json").stdout)
    assert [row["task_id"] for row in unfinished] == [video]


def test_run_until_done_finishes_every_task_and_exits_0(tracker: Run, api: API) -> None:
    """`run --until-done` polls until nothing is left, then exits 0 on its own."""
    ids = [api.simulator.add_video(f"video_run_{i}", steps=2) for i in range(5)]
    env = api_env(api)
    tracker("add", *ids, "video_missing", env=env)
    result = tracker("run", "--until-done", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    tasks = json.loads(tracker("list", "--json").stdout)
    reasons = {row["task_id"]: row["finish_reason"] for row in tasks}
    assert reasons == {**dict.fromkeys(ids, "completed"), "video_missing": "not_found"}
    assert "video_missing finished: not_found" in result.stderr


def test_run_stops_cleanly_on_sigterm_and_sigint(tracker: Run, api: API, workdir: Path) -> None:
    """The daemon exits 0 within 10 seconds of SIGTERM or SIGINT, its polls written."""
    video = api.simulator.add_video("video_forever", steps=100000)
    env = {**os.environ, **api_env(api)}
    subprocess.run([TRACKER, "add", video], cwd=workdir, env=env, check=True, capture_output=True)
    for signum in (signal.SIGTERM, signal.SIGINT):
        daemon = subprocess.Popen(
            [TRACKER, "run"],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        before = api.simulator.polls(video)
        while api.simulator.polls(video) < before + 3:
            assert time.monotonic() < deadline and daemon.poll() is None
            time.sleep(0.05)
        sent = time.monotonic()
        daemon.send_signal(signum)
        _out, err = daemon.communicate(timeout=15)
        assert daemon.returncode == 0, err
        assert time.monotonic() - sent < 10
        assert signal.Signals(signum).name in err
    written = (
        sqlite3.connect(workdir / "tracker.db")
        .execute("SELECT COUNT(*) FROM snapshots")
        .fetchone()[0]
    )
    # Every poll the server answered was written, give or take the one in flight at each stop.
    assert api.simulator.polls(video) - 2 <= written <= api.simulator.polls(video)


def test_sql_prints_tables_json_and_csv_and_refuses_writes(tracker: Run, workdir: Path) -> None:
    """`sql` answers reads in three formats; a write exits 2 and changes nothing."""
    tracker("add", "video_a", "video_b", "--label", "x")
    query = "SELECT task_id, label FROM tasks ORDER BY task_id"
    as_table = tracker("sql", query)
    assert as_table.returncode == 0
    assert as_table.stdout.splitlines()[0].split() == ["task_id", "label"]
    assert "(2 rows)" in as_table.stdout
    assert json.loads(tracker("sql", query, "--json").stdout) == [
        {"task_id": "video_a", "label": "x"},
        {"task_id": "video_b", "label": "x"},
    ]
    assert tracker("sql", query, "--csv").stdout == "task_id,label\nvideo_a,x\nvideo_b,x\n"
    for write in (
        "DELETE FROM tasks",
        "UPDATE tasks SET label = 'y'",
        "SELECT 1; DROP TABLE tasks",
    ):
        assert_usage_error(tracker("sql", write), "refused")
    assert count_tasks(workdir) == 2
    assert json.loads(tracker("sql", query, "--json").stdout)[0]["label"] == "x"


def test_sql_tells_a_refusal_from_a_mistake_in_the_query(tracker: Run, workdir: Path) -> None:
    """A write or two statements are refused, a missing table or bad syntax is an error in the
    query: each one line on stderr saying which, exit 2, nothing changed."""
    tracker("add", "video_a")
    expected = {
        "SELECT * FROM nope": "tracker: error: error in the query: no such table: nope",
        "SELEC 1": 'tracker: error: error in the query: near "SELEC": syntax error',
        "SELECT 1; SELECT 2": "tracker: error: refused: tracker sql runs exactly one statement",
        "DELETE FROM tasks": "tracker: error: refused: tracker sql runs one read-only statement "
        "(SELECT, WITH, VALUES, TABLE); this one is DELETE",
    }
    for query, line in expected.items():
        result = tracker("sql", query)
        assert_usage_error(result)
        assert (result.stdout, result.stderr.strip()) == ("", line)
    assert count_tasks(workdir) == 1


def test_remove_keeps_history_and_reports_finished_ones(tracker: Run, workdir: Path) -> None:
    """`remove` finishes tasks as removed; removing again says they had already finished."""
    tracker("add", "video_a", "video_b")
    first = tracker("remove", "video_a")
    assert first.stdout.strip() == "removed 1 task"
    again = tracker("remove", "video_a", "video_b")
    assert again.stdout.strip() == "removed 1 task; 1 had already finished"
    rows = json.loads(tracker("list", "--json").stdout)
    assert {row["finish_reason"] for row in rows} == {"removed"}
    assert all(row["finished_at"] for row in rows)


def test_remove_owes_the_events_of_the_channels_set(tracker: Run, workdir: Path) -> None:
    """`remove` with TRACKER_NOTIFY_URL (and --on-finish) set writes one pending event per
    channel for each task it finishes; without them, none."""
    tracker("add", "video_a", "video_b")
    assert tracker("remove", "video_a").returncode == 0
    env = {"TRACKER_NOTIFY_URL": "http://127.0.0.1:9/hooks"}
    removed = tracker("remove", "video_b", "--on-finish", "true", env=env)
    assert removed.returncode == 0, removed.stderr
    rows = json.loads(
        tracker(
            "sql", "SELECT task_id, channel, state FROM outbox ORDER BY channel", "--json"
        ).stdout
    )
    assert rows == [
        {"task_id": "video_b", "channel": "command", "state": "pending"},
        {"task_id": "video_b", "channel": "webhook", "state": "pending"},
    ]


def test_db_upgrade_and_current_from_any_directory(tracker: Run, tmp_path: Path) -> None:
    """`db upgrade` migrates a new database to head wherever the command runs from."""
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    before = tracker("db", "current", "--db", url)
    assert "revision none" in before.stdout
    upgraded = tracker("--db", url, "db", "upgrade")
    assert upgraded.returncode == 0
    assert f"revision {migrations.HEAD_REVISION} (head)" in upgraded.stdout
    current = tracker("db", "current", "--db", url).stdout
    assert f"revision {migrations.HEAD_REVISION} (head)" in current


def test_every_command_brings_a_new_database_to_head(tracker: Run, tmp_path: Path) -> None:
    """No separate migration step: the first `add` on a new file creates the schema."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert tracker("add", "video_1", env={"TRACKER_DATABASE_URL": url}).returncode == 0
    assert "(head)" in tracker("db", "current", env={"TRACKER_DATABASE_URL": url}).stdout


def test_the_token_never_appears_in_output_logs_or_database(
    tracker: Run, api: API, workdir: Path
) -> None:
    """Even at -vv, nothing the daemon prints or stores contains the token."""
    video = api.simulator.add_video("video_secret", steps=1)
    env = api_env(api)
    outputs = [
        tracker("-vv", "add", video, env=env),
        tracker("-vv", "run", "--until-done", env=env),
        tracker("run", "--help", env=env),
        tracker("-vv", "list", env=env),
    ]
    assert outputs[1].returncode == 0
    assert "DEBUG" in outputs[1].stderr
    for result in outputs:
        assert api.token not in result.stdout + result.stderr
    for path in workdir.iterdir():
        assert api.token.encode() not in path.read_bytes(), path


def test_quiet_hides_routine_logs(tracker: Run, api: API) -> None:
    """-q lowers the log level: the daemon's INFO lines disappear, warnings stay."""
    video = api.simulator.add_video("video_quiet", steps=1)
    env = api_env(api)
    tracker("add", video, env=env)
    result = tracker("-q", "run", "--until-done", env=env)
    assert result.returncode == 0
    assert "INFO" not in result.stderr


WIDE = {"COLUMNS": "200"}  # help text on one line
DEMO_OUTCOMES = {
    "video_sunrise": "completed",
    "video_ocean": "completed",
    "video_city": "failed",
    "video_missing": "not_found",
    "sora-2:task_relay": "completed",
}


def test_demo_needs_no_token_and_leaves_a_database_to_explore(tracker: Run, workdir: Path) -> None:
    """`demo` runs the daemon against the built-in simulator, drawn in 80 columns with whole
    IDs and words, and ends with commands that work on the database it leaves behind in
    tracker-demo.db (not TRACKER_DATABASE_URL's): list, history, sql and serve."""
    elsewhere = workdir / "elsewhere.db"
    env = {"COLUMNS": "80", "TRACKER_DATABASE_URL": f"sqlite:///{elsewhere}"}
    result = tracker("demo", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (workdir / "tracker-demo.db").is_file() and not elsewhere.exists()
    frame = result.stdout.split("Registered")[1].split("History of")[0].splitlines()
    assert all(len(line) <= 80 for line in frame), frame
    for task_id, reason in DEMO_OUTCOMES.items():
        row = next(line for line in frame if line.startswith(task_id + " "))
        assert row.split()[-1] == reason
    explore = result.stdout.split("Explore it:\n")[1].splitlines()
    commands = [shlex.split(line.split("    (")[0]) for line in explore]
    assert [command[:2] for command in commands] == [
        ["tracker", "list"],
        ["tracker", "history"],
        ["tracker", "sql"],
        ["tracker", "serve"],
    ]
    assert all(command[-2:] == ["--db", "sqlite:///tracker-demo.db"] for command in commands)
    listed, history, query = (tracker(*command[1:]) for command in commands[:3])
    for done in (listed, history, query):
        assert done.returncode == 0, done.stderr
    assert all(task_id in listed.stdout for task_id in DEMO_OUTCOMES)
    last = history.stdout.splitlines()[-1].split()
    assert "completed" in last and last[-1] == "yes"
    counts = {line.split()[0]: line.split()[1] for line in query.stdout.splitlines()[1:-1]}
    assert counts == {"completed": "3", "failed": "1", "not_found": "1"}
    with serving(f"sqlite:///{workdir / 'tracker-demo.db'}") as (url, _):
        sunrise = httpx.get(f"{url}/v1/tasks/video_sunrise", headers=AUTH)
    assert sunrise.json()["finish_reason"] == "completed"


def test_demo_replaces_its_own_database_and_leaves_any_other_alone(
    tracker: Run, workdir: Path
) -> None:
    """Run again, the demo starts its database afresh; a file that is not a demo's database
    (another tracker database, or not a database) stops it with exit 2, the file unchanged;
    `--db` names another file, and `demo --help` says so."""
    assert "(default: sqlite:///tracker-demo.db;" in tracker("demo", "--help", env=WIDE).stdout
    mine = tracker("add", "video_mine", "--db", "sqlite:///tracker-demo.db")
    assert mine.returncode == 0, mine.stderr
    (workdir / "notes.db").write_text("my notes")
    for name in ("tracker-demo.db", "notes.db"):
        before = (workdir / name).read_bytes()
        refused = tracker("demo", "--db", f"sqlite:///{name}")
        assert_usage_error(refused, name, "not a database the demo made", "--db")
        assert (workdir / name).read_bytes() == before
    first = tracker("demo", "--db", "sqlite:///demo-two.db", timeout=120)
    again = tracker("demo", "--db", "sqlite:///demo-two.db", timeout=120)
    assert (first.returncode, again.returncode) == (0, 0), again.stderr
    assert "replacing the previous demo's" in again.stdout
    tasks = sqlite3.connect(workdir / "demo-two.db").execute("SELECT COUNT(*) FROM tasks")
    assert tasks.fetchone()[0] == len(DEMO_OUTCOMES)


def test_the_token_stays_secret_when_things_go_wrong(tracker: Run, api: API, workdir: Path) -> None:
    """A refused token, an unreachable API and a bad token file: the token is in no output,
    log line or stored row, at the most verbose level."""
    wrong = "sk-wrong-but-secret-91c2"
    video = api.simulator.add_video("video_secret_errors", steps=1)
    tracker("add", video)
    refused = tracker("-vv", "poll", env=api_env(api, TRACKER_API_TOKEN=wrong))
    assert refused.returncode == 1 and "refused the token" in refused.stderr
    unreachable = tracker(
        "-vv",
        "poll",
        "--all",
        env=api_env(api, TRACKER_API_TOKEN=wrong, TRACKER_API_BASE="http://127.0.0.1:9"),
    )
    assert unreachable.returncode == 0
    token_file = workdir / "token"
    token_file.write_text(wrong + " with a space\n")
    bad_file = tracker("poll", "--token-file", str(token_file))
    assert bad_file.returncode == 2
    history = tracker("history", video, "--json")
    for result in (refused, unreachable, bad_file, history):
        assert wrong not in result.stdout + result.stderr
    for path in workdir.iterdir():
        if path != token_file:
            assert wrong.encode() not in path.read_bytes(), path
    errors = [row["error"] for row in json.loads(history.stdout)]
    assert errors[0]["code"] == "invalid_api_key"
    assert errors[1]["type"] == "connection_error"


def test_a_database_from_a_newer_tracker_is_a_clear_error(tracker: Run, workdir: Path) -> None:
    """A revision this tracker does not know: exit 1 with one line, nothing changed."""
    tracker("add", "video_a")
    connection = sqlite3.connect(workdir / "tracker.db")
    connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.commit()
    connection.close()
    result = tracker("list")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "9999" in result.stderr and "older" in result.stderr


def test_a_port_in_use_for_webhooks_is_a_usage_error(tracker: Run, api: API) -> None:
    """--webhook-port on a port already taken: exit 2 with one line, before polling."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        env = api_env(api, TRACKER_WEBHOOK_SECRET="whsec_YS1sb25nLWVub3VnaC13ZWJob29rLXNlY3JldA==")
        result = tracker("run", "--webhook-host", "127.0.0.1", "--webhook-port", str(port), env=env)
    finally:
        taken.close()
    assert_usage_error(result, f"--webhook-port {port}", "cannot listen")


def test_download_fetches_a_completed_task_on_demand(tracker: Run, api: API, workdir: Path) -> None:
    """`tracker download ID` saves the files of a task finished without --download-dir;
    an unfinished task is refused with exit 2."""
    done = api.simulator.add_video("video_on_demand", steps=1)
    running = api.simulator.add_video("video_still_running", steps=1000)
    env = api_env(api)
    tracker("add", done, running, env=env)
    for _ in range(3):
        tracker("poll", "--all", env=env)
    result = tracker(
        "download",
        done,
        "--download-dir",
        str(workdir / "saved"),
        "--download-variants",
        "video,spritesheet",
        "--json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    rows = {row["variant"]: row for row in json.loads(result.stdout)}
    assert {v: r["state"] for v, r in rows.items()} == {"video": "done", "spritesheet": "done"}
    assert Path(rows["video"]["path"]).read_bytes() == content_of(done, "video")
    refused = tracker("download", running, "--download-dir", str(workdir / "saved"), env=env)
    assert_usage_error(refused, f"task {running!r} has not completed")


def test_a_port_in_use_for_metrics_is_a_usage_error(tracker: Run, api: API) -> None:
    """--metrics-port on a port already taken: exit 2 with one line."""
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        result = tracker(
            "run", "--metrics-host", "127.0.0.1", "--metrics-port", str(port), env=api_env(api)
        )
    finally:
        taken.close()
    assert_usage_error(result, f"--metrics-port {port}", "cannot listen")


def test_settings_only_the_daemon_needs_do_not_stop_other_commands(tracker: Run) -> None:
    """A shared environment with --webhook-port but its secret missing: `list` works, `run`
    refuses to start (exit 2, one line)."""
    env = {"TRACKER_WEBHOOK_PORT": "8080", "TRACKER_API_TOKEN": "sk-x"}
    assert tracker("add", "video_a", env=env).returncode == 0
    assert tracker("list", env=env).returncode == 0
    assert_usage_error(tracker("run", env=env), "--webhook-port needs TRACKER_WEBHOOK_SECRET")


def test_with_json_logs_the_error_line_is_json_too(tracker: Run) -> None:
    """Under --log-format json, a failing command's last line is a JSON object as well."""
    assert tracker("add", "video_a").returncode == 0
    result = tracker("--log-format", "json", "history", "video_unknown")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    document = json.loads(line)
    assert (document["level"], document["logger"]) == ("error", "tracker")
    assert document["message"] == "unknown task ID 'video_unknown'"


def test_json_logs_stats_and_export(tracker: Run, api: API, workdir: Path) -> None:
    """--log-format json gives one object per line with the poll's fields; stats and export
    read the result back as JSON, JSON lines and CSV."""
    ids = [api.simulator.add_video(f"video_ops_{i}", steps=2) for i in range(3)]
    env = api_env(api)
    tracker("add", *ids, env=env)
    run = tracker("--log-format", "json", "-v", "run", "--until-done", env=env)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    finishes = [line for line in lines if line.get("finish_reason") == "completed"]
    assert {line["task_id"] for line in finishes} == set(ids)
    assert all(line["http_status"] == 200 and line["latency_ms"] >= 0 for line in finishes)
    assert any(line["level"] == "debug" and "task_id" in line for line in lines)
    assert api.token not in run.stderr

    stats = json.loads(tracker("stats", "--json").stdout)
    assert (stats["unfinished"], stats["finished"]) == (0, {"completed": 3})
    assert stats["polls_total"] == 3 * 4
    assert "3 completed" in tracker("stats").stdout

    jsonl = tracker("export", "--format", "jsonl").stdout.splitlines()
    assert len(jsonl) == 12 and json.loads(jsonl[0])["polled_at"].endswith("Z")
    tasks_csv = tracker("export", "--format", "csv", "--table", "tasks").stdout.splitlines()
    assert tasks_csv[0].startswith("task_id,label,status") and len(tasks_csv) == 4
    assert tracker("export", "--since", "2099-01-01").stdout == ""
    out = workdir / "exported"
    written = tracker("export", "--format", "csv", "--output", str(out))
    assert written.returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["snapshots.csv", "tasks.csv"]
    assert len((out / "snapshots.csv").read_text().splitlines()) == 13
    # Each task's second in_progress repeats the first: the one snapshot of each that goes.
    dry_run = tracker("prune", "--older-than", "1s", "--dry-run").stdout.strip()
    assert dry_run == "would prune 3 snapshots"
    assert tracker("prune", "--older-than", "1s").stdout.strip() == "pruned 3 snapshots"


def on_a_terminal(args: list[str], cwd: Path) -> str:
    """What `tracker ARGS` prints when its standard output is a terminal."""
    import pty

    controller, terminal = pty.openpty()
    try:
        subprocess.run(
            [TRACKER, *args], cwd=cwd, stdout=terminal, stderr=subprocess.DEVNULL, timeout=60
        )
        os.close(terminal)
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal is closed and drained
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(controller)
    return output.decode().replace("\r\n", "\n")


def test_a_refused_token_pause_is_said_by_poll_stats_list_and_a_starting_daemon(
    tracker: Run, api: API, workdir: Path
) -> None:
    """After a 401, with the token fixed: `poll` says how many tasks wait, until when in UTC,
    why, and that `poll --all` asks now; `stats` (text and JSON) and `list` on a terminal show
    the pause; a daemon started meanwhile says it once, as a WARNING, and asks the API nothing
    before the pause ends."""
    ids = [api.simulator.add_video(f"video_paused_{i}", steps=100) for i in range(3)]
    env = api_env(api, TRACKER_POLL_INTERVAL="60")
    tracker("add", *ids)
    refused = tracker("poll", env={**env, "TRACKER_API_TOKEN": "sk-wrong-token-7"})
    assert refused.returncode == 1

    def asked() -> int:
        """Requests the API answered with a status: snapshots (the refused one included)."""
        return int(
            json.loads(tracker("sql", "SELECT COUNT(*) AS n FROM snapshots", "--json").stdout)[0][
                "n"
            ]
        )

    refused_polls = asked()  # the three sent at once; the first refusal paused every task
    assert refused_polls >= 1

    fixed = tracker("poll", env=env)
    assert fixed.returncode == 0, fixed.stderr
    first, second = fixed.stdout.splitlines()
    assert first == "polled 0 tasks: 0 finished, 0 failed polls"
    assert re.fullmatch(
        r"3 tasks wait until \d\d:\d\d:\d\d UTC for the API's back-off \(a refused token\); "
        r"`tracker poll --all` asks now",
        second,
    ), second

    [pause] = json.loads(tracker("stats", "--json").stdout)["paused"]
    assert (pause["provider"], pause["reason"], pause["refusals"], pause["waiting"]) == (
        "default",
        "refused",
        1,
        3,
    )
    until = datetime.fromisoformat(pause["paused_until"])
    assert 50 < (until - datetime.now(UTC)).total_seconds() <= 60
    assert f"paused: {second}" in tracker("stats").stdout.splitlines()
    assert on_a_terminal(["list"], workdir).splitlines()[0] == second
    assert tracker("list").stdout.splitlines()[0].split()[0] == "task_id"  # piped: the table

    daemon = subprocess.Popen(
        [TRACKER, "run"],
        cwd=workdir,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert daemon.stderr is not None
    seen = []
    deadline = time.monotonic() + 30
    while not any("polling every" in line for line in seen):
        assert time.monotonic() < deadline
        seen.append(daemon.stderr.readline())
    time.sleep(1)  # a second of ticks: none may poll
    daemon.send_signal(signal.SIGTERM)
    _out, rest = daemon.communicate(timeout=15)
    warnings = [line for line in seen + rest.splitlines() if " WARNING " in line]
    assert len(warnings) == 1, warnings
    assert "3 tasks wait until " in warnings[0] and "(a refused token)" in warnings[0]
    assert asked() == refused_polls and sum(api.simulator.polls(video) for video in ids) == 0
