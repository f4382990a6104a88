"""Long inputs and long lists through the installed `tracker` command: IDs read as a stream,
lists and histories written as they are read, pages that follow each other, and memory that
stays flat (docs/cli.md, list; docs/performance.md)."""

from __future__ import annotations

import json
import os
import pty
import resource
import shlex
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from tests.acceptance.test_cli import TRACKER, assert_usage_error, count_tasks

# An address-space limit about twice what `add` and `list` need at any size (about 120 MB,
# Python and its libraries included), and far below what a whole list held in memory takes.
MEMORY_LIMIT = 250 * 2**20

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """`tracker ARGS…` in a fresh directory, its address space limited to MEMORY_LIMIT."""

    def run_tracker(
        *args: str, stdin: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TRACKER, *args],
            cwd=tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit_memory,
        )

    return run_tracker


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def streamed(
    directory: Path, args: list[str], chunks: Iterable[bytes], timeout: float = 120
) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run `tracker ARGS…` with ``chunks`` written to its standard input as it reads them;
    return the result and how many bytes it took before it exited."""
    process = subprocess.Popen(
        [TRACKER, *args],
        cwd=directory,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=limit_memory,
    )
    assert process.stdin and process.stdout and process.stderr
    sent = 0

    def feed() -> None:
        nonlocal sent
        assert process.stdin is not None
        try:
            for chunk in chunks:
                process.stdin.write(chunk)
                sent += len(chunk)
            process.stdin.close()
        except BrokenPipeError:
            pass

    errors: list[bytes] = []
    feeder = threading.Thread(target=feed, daemon=True)
    stderr = process.stderr
    reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
    feeder.start()
    reader.start()
    stdout = process.stdout.read()  # communicate() would close standard input at once
    process.wait(timeout)
    feeder.join(timeout)
    reader.join(timeout)
    result = subprocess.CompletedProcess(
        args, process.returncode, stdout.decode(), errors[0].decode()
    )
    return result, sent


def on_terminal(directory: Path, *args: str) -> tuple[str, str]:
    """`tracker ARGS…` with its standard output on a terminal: (that output, stderr)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [TRACKER, *args], cwd=directory, stdout=terminal, stderr=subprocess.PIPE
    )
    os.close(terminal)
    output = b""
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # the terminal's other side closed: everything is read
            break
        if not data:
            break
        output += data
    os.close(controller)
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0, stderr
    return output.decode().replace("\r\n", "\n"), stderr


def test_dev_zero_is_refused_at_once_with_its_line_number(run: Run, tmp_path: Path) -> None:
    """A file without newlines is refused after its first kilobyte, not read to the end."""
    result = run("add", "--file", "/dev/zero", timeout=30)
    assert_usage_error(result, "longer than 256 characters", "(line 1 of /dev/zero)")
    assert not (tmp_path / "tracker.db").exists()


def test_an_over_long_line_is_refused_before_the_rest_of_it_is_read(tmp_path: Path) -> None:
    """A line of 512 MiB on standard input is refused, with its number, once the limit of one
    line is read: the sender is cut off early, and nothing is written."""
    line = [b"video_ok\n# a comment\n"] + [b"a" * 2**20] * 512
    result, sent = streamed(tmp_path, ["add", "--file", "-"], line)
    assert_usage_error(result, "longer than 256 characters", "(line 3 of standard input)")
    assert sent < 64 * 2**20
    assert not (tmp_path / "tracker.db").exists()


def test_300_000_ids_are_added_in_flat_memory(tmp_path: Path) -> None:
    """`add --file -` takes 300,000 IDs within an address space far smaller than the IDs held
    at once would take."""
    count = 300_000

    def ids() -> Iterable[bytes]:
        for start in range(0, count, 10_000):
            yield "".join(f"video_{i:012d}\n" for i in range(start, start + 10_000)).encode()

    added, _ = streamed(tmp_path, ["add", "--file", "-"], ids())
    assert (added.returncode, added.stdout.strip()) == (0, "added 300,000 tasks"), added.stderr
    assert count_tasks(tmp_path) == count


def test_300_000_tasks_are_listed_in_flat_memory(tmp_path: Path) -> None:
    """`list --json` writes 300,000 tasks as it reads them, within an address space far
    smaller than the rows held at once would take."""
    count = 300_000
    subprocess.run([TRACKER, "db", "upgrade"], cwd=tmp_path, check=True, capture_output=True)
    with sqlite3.connect(tmp_path / "tracker.db") as connection:
        connection.executemany(
            "INSERT INTO tasks (task_id, registered_at, next_poll_at) VALUES (?, ?, ?)",
            (
                (f"video_{i:012d}", f"2026-03-01 08:{i // 10_000:02d}:00.000000", "2026-03-01")
                for i in range(count)
            ),
        )
    listing = subprocess.Popen(
        [TRACKER, "list", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=limit_memory,
        text=True,
    )
    assert listing.stdout and listing.stderr
    first = next(listing.stdout, "")
    rows = sum(1 for _ in listing.stdout) - 1  # the closing bracket
    assert listing.wait(timeout=120) == 0, listing.stderr.read()
    assert (first, rows) == ("[\n", count)


def test_pages_on_a_terminal_say_how_many_more_and_how_to_see_them(tmp_path: Path) -> None:
    """On a terminal `list` shows the newest 50, then how many more there are and the command
    for the next page; following it shows every task once."""
    (tmp_path / "ids.txt").write_text("".join(f"video_{i:03d}\n" for i in range(120)))
    subprocess.run([TRACKER, "add", "--file", "ids.txt"], cwd=tmp_path, check=True)
    seen: list[str] = []
    command = ["list"]
    footers = []
    while True:
        output, stderr = on_terminal(tmp_path, *command)
        rows = output.splitlines()
        assert rows[0].split()[:2] == ["task_id", "status"]
        seen += [row.split()[0] for row in rows[1:]]
        if not stderr:
            break
        footers.append(stderr.strip())
        command = shlex.split(stderr.split("next page: ", 1)[1])[1:]
    assert footers == [
        "… 70 more; next page: tracker list --after video_070",
        "… 20 more; next page: tracker list --after video_020",
    ]
    assert seen == [f"video_{i:03d}" for i in reversed(range(120))]
    piped = subprocess.run(
        [TRACKER, "list"], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert (len(piped.stdout.splitlines()), piped.stderr) == (121, "")


def test_paging_with_after_covers_every_task_once(run: Run) -> None:
    """Scripts page with --limit and --after the last task shown: every task comes once,
    newest first, and tasks added meanwhile do not slip into later pages."""
    run("add", *[f"t{i:02d}" for i in range(30)], "--label", "first")
    run("add", *[f"u{i:02d}" for i in range(17)])
    seen: list[str] = []
    after: list[str] = []
    while True:
        page = run("list", "--jsonl", "--limit", "10", *after)
        rows = [json.loads(line) for line in page.stdout.splitlines()]
        seen += [row["task_id"] for row in rows]
        if len(rows) < 10:
            break
        after = ["--after", rows[-1]["task_id"]]
        run("add", f"late{len(seen)}")
    expected = [f"u{i:02d}" for i in reversed(range(17))] + [
        f"t{i:02d}" for i in reversed(range(30))
    ]
    assert seen == expected
    assert_usage_error(run("list", "--after", "nobody"), "unknown task ID 'nobody'")
    assert_usage_error(run("list", "--limit", "0"), "--limit", "1 or more")


def test_lists_select_finished_unfinished_label_and_status(run: Run) -> None:
    """--finished, --unfinished, --label and --status narrow the list; the first two exclude
    each other."""
    run("add", "a", "b", "c", "--label", "night")
    run("add", "d")
    run("remove", "b", "d")

    def listed(*flags: str) -> list[str]:
        result = run("list", "--json", *flags)
        assert result.returncode == 0, result.stderr
        return sorted(row["task_id"] for row in json.loads(result.stdout))

    assert listed("--finished") == ["b", "d"]
    assert listed("--unfinished") == ["a", "c"]
    assert listed("--label", "night", "--finished") == ["b"]
    assert listed("--status", "queued") == []
    assert run("list", "--finished", "--unfinished").returncode == 2


def test_history_shows_the_first_or_last_snapshots_as_they_are_read(
    run: Run, tmp_path: Path
) -> None:
    """`history --limit N` gives the first N snapshots, `--tail N` the last N, oldest first,
    as a table, a JSON array or JSON lines; an unknown task writes nothing to stdout."""
    run("add", "video_h")
    with sqlite3.connect(tmp_path / "tracker.db") as connection:
        connection.executemany(
            "INSERT INTO snapshots (task_id, polled_at, http_status, status, progress, finished)"
            " VALUES ('video_h', ?, 200, 'in_progress', ?, 0)",
            [(f"2026-03-01 08:{minute:02d}:00.000000", minute) for minute in range(40)],
        )

    def progress(*flags: str) -> list[int]:
        result = run("history", "video_h", *flags)
        assert result.returncode == 0, result.stderr
        if "--jsonl" in flags:
            return [json.loads(line)["progress"] for line in result.stdout.splitlines()]
        return [row["progress"] for row in json.loads(result.stdout)]

    assert progress("--json") == list(range(40))
    assert progress("--tail", "3", "--json") == [37, 38, 39]
    assert progress("--limit", "2", "--jsonl") == [0, 1]
    table = run("history", "video_h", "--tail", "2").stdout.splitlines()
    assert [line.split()[1] for line in table[1:]] == ["08:38:00", "08:39:00"]
    assert run("history", "video_h", "--tail", "2", "--limit", "2").returncode == 2
    unknown = run("history", "video_none", "--json")
    assert_usage_error(unknown, "unknown task ID 'video_none'")
    assert unknown.stdout == ""


def test_metadata_is_stored_with_every_id_added_and_shown_in_lists(
    run: Run, tmp_path: Path
) -> None:
    """`add --metadata` stores the JSON object with every new task; `list --json` gives it
    back; anything but a JSON object of at most 16 KiB is refused before anything is written."""
    for bad, reason in [
        ("[1, 2]", "a JSON object is needed"),
        ("{user: 42}", "not JSON"),
        (json.dumps({"x": "y" * 16_384}), "more than 16,384"),
    ]:
        assert_usage_error(run("add", "video_m", "--metadata", bad), "invalid metadata", reason)
    assert not (tmp_path / "tracker.db").exists()
    added = run("add", "video_m", "video_n", "--metadata", '{"user": 42, "tags": ["a"]}')
    assert added.stdout.strip() == "added 2 tasks"
    run("add", "video_o")
    rows = {row["task_id"]: row for row in json.loads(run("list", "--json").stdout)}
    assert rows["video_m"]["metadata"] == rows["video_n"]["metadata"] == {"user": 42, "tags": ["a"]}
    assert rows["video_o"]["metadata"] is None
