"""Every SQL example in README.md and docs/*.md runs: each ```sql block's statements and each
`tracker sql "…"` command, read-only through Tracker.sql, on SQLite and on PostgreSQL (or only on
the database its block is marked for: ```sql sqlite, ```sql postgresql), against rows a real
run of the daemon wrote."""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import API, make_tracker, run_until_done
from tracker import Tracker, TrackerError
from tracker.simulator import Reply

ROOT = Path(__file__).resolve().parents[2]
DATABASES = frozenset({"sqlite", "postgresql"})
SHELLS = frozenset({"sh", "bash", "shell", "console"})
# Global options of the command line that take a value, so that value is not the query.
_OPTIONS_WITH_VALUES = frozenset({"--db", "--log-format"})
_FENCE = re.compile(r"^\s*```\s*(\S*)(.*)$")
_INLINE = re.compile(r"`([^`\n]+)`")


class DocumentError(ValueError):
    """An example the documents mark in a way this test cannot honour."""


@dataclass(frozen=True)
class Example:
    where: str  # file:line of the statement's first line
    query: str
    databases: frozenset[str]
    command: bool = False  # a `tracker sql` command, not a statement of a ```sql block


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def examples(path: Path, text: str | None = None) -> list[Example]:
    """The SQL examples of one Markdown document, in order."""
    name = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    lines = (path.read_text() if text is None else text).splitlines()
    found: list[Example] = []
    number = 0
    while number < len(lines):
        fence = _FENCE.match(lines[number])
        if fence is None:
            for span in _INLINE.findall(lines[number]):
                found += _commands(span, f"{name}:{number + 1}", DATABASES)
            number += 1
            continue
        language = fence.group(1).lower()
        databases = _databases(fence.group(2).split(), f"{name}:{number + 1}")
        start = number + 1
        number = start
        while number < len(lines) and lines[number].strip() != "```":
            number += 1
        if number == len(lines):
            raise DocumentError(f"{name}:{start}: a code block is never closed")
        block = lines[start:number]
        number += 1
        if language == "sql":
            found += _statements(block, name, start, databases)
        elif language in SHELLS:
            for offset, command in _shell_lines(block):
                found += _commands(command, f"{name}:{start + offset + 1}", databases)
        elif language and databases != DATABASES:
            raise DocumentError(f"{name}:{start}: only sql and shell blocks name a database")
    return found


def _databases(words: list[str], where: str) -> frozenset[str]:
    marked = frozenset(word.lower() for word in words)
    if not marked <= DATABASES:
        raise DocumentError(f"{where}: unknown database {sorted(marked - DATABASES)}")
    return marked or DATABASES


def _statements(
    block: list[str], name: str, start: int, databases: frozenset[str]
) -> list[Example]:
    """A block's statements, split where a line ends with a semicolon."""
    found = []
    first: int | None = None
    pending: list[str] = []

    def flush() -> None:
        if first is not None:
            query = "\n".join(pending).strip().rstrip(";").strip()
            found.append(Example(f"{name}:{start + first + 1}", query, databases))

    for offset, line in enumerate(block):
        pending.append(line)
        if first is None and line.strip() and not line.strip().startswith("--"):
            first = offset
        if line.rstrip().endswith(";"):
            flush()
            first, pending = None, []
    flush()
    return found


def _shell_lines(block: list[str]) -> list[tuple[int, str]]:
    """The block's command lines, with backslash continuations joined."""
    joined: list[tuple[int, str]] = []
    first = 0
    parts: list[str] = []
    for offset, line in enumerate(block):
        if not parts:
            first = offset
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        joined.append((first, " ".join([*parts, line])))
        parts = []
    return joined


def _commands(text: str, where: str, databases: frozenset[str]) -> list[Example]:
    """The queries of the `tracker sql` commands in one line of shell; none when the line does
    not run one, or only mentions the command without a query."""
    if not re.search(r"\btracker\b.*\bsql\b", text):
        return []
    try:
        words = shlex.split(text, comments=True)
    except ValueError as exc:
        raise DocumentError(f"{where}: {exc}: {text}") from None
    found = []
    for index, word in enumerate(words):
        if word != "tracker" and not word.endswith("/tracker"):
            continue
        rest = _after_options(words[index + 1 :])
        if rest[:1] != ["sql"]:
            continue
        arguments = _after_options(rest[1:])
        if arguments:
            found.append(Example(where, arguments[0], databases, command=True))
    return found


def _after_options(words: list[str]) -> list[str]:
    """``words`` from the first that is not an option (nor an option's value)."""
    index = 0
    while index < len(words) and words[index].startswith("-"):
        index += 2 if words[index] in _OPTIONS_WITH_VALUES else 1
    return words[index:]


def all_examples() -> list[Example]:
    return [example for path in documents() for example in examples(path)]


def run_examples(
    tracker: Tracker, database: str, found: list[Example]
) -> list[tuple[Example, TrackerError]]:
    """The examples meant for ``database`` that failed, with their errors."""
    failures = []
    for example in found:
        if database not in example.databases:
            continue
        try:
            tracker.sql(example.query)
        except TrackerError as exc:
            failures.append((example, exc))
    return failures


def _dialect(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


def test_every_sql_example_runs_on_the_databases_it_is_given_for(
    api: API, database_url: str, tmp_path: Path
) -> None:
    """Each statement of every ```sql block and each `tracker sql` command of README.md and
    docs/*.md runs read-only on this database, once the daemon has written tasks, snapshots,
    downloads and notifications to it."""
    found = all_examples()
    database = _dialect(database_url)
    # The documents hold examples of each kind; an extractor that found none would pass anything.
    assert any(example.databases == {database} for example in found)
    assert any(example.databases == DATABASES for example in found)
    assert any(example.command for example in found)
    simulator = api.simulator
    completed = simulator.add_video("video_68f0a1", steps=3)
    failed = simulator.add_video("video_failed", steps=1, outcome="failed")
    flaky = simulator.script(
        "video_flaky",
        [Reply(status=500), Reply(video={"status": "in_progress", "progress": 50}), *_done()],
    )
    with make_tracker(
        api,
        database_url,
        download_dir=str(tmp_path / "videos"),
        on_finish=(sys.executable, "-c", "pass"),
    ) as tracker:
        tracker.add([completed, failed, flaky, "video_missing"], label="docs")
        run_until_done(tracker)
        tracker.add(["video_waiting"])
        for table in ("tasks", "snapshots", "downloads", "outbox"):
            assert tracker.sql(f"SELECT COUNT(*) FROM {table}").rows[0][0] > 0, table
        assert tracker.sql("SELECT COUNT(*) FROM snapshots WHERE error IS NOT NULL").rows[0][0]
        failures = run_examples(tracker, database, found)
    assert not failures, "\n\n".join(f"{e.where}: {exc}\n{e.query}" for e, exc in failures)


def _done() -> list[Reply]:
    return [Reply(video={"status": "completed", "progress": 100})]


def test_a_broken_or_mismarked_example_is_reported(tmp_path: Path) -> None:
    """An example that does not run is a failure naming its line; a block marked for an unknown
    database is refused; a block marked for the other database is not run."""
    document = tmp_path / "page.md"
    text = "\n".join(
        [
            'Run `tracker sql "SELECT COUNT(*) FROM tasks"` or:',
            "```sql",
            "-- a comment",
            "SELECT no_such_column FROM tasks;",
            "SELECT 1",
            "```",
            "```sql postgresql",
            "SELECT now() - interval '1 hour'",
            "```",
            "```sh",
            "tracker --db sqlite:///x.db sql --json \\",
            '    "SELECT task_id FROM nowhere"',
            "```",
        ]
    )
    found = examples(document, text)
    assert [(e.where, e.databases) for e in found] == [
        ("page.md:1", DATABASES),
        ("page.md:4", DATABASES),
        ("page.md:5", DATABASES),
        ("page.md:8", frozenset({"postgresql"})),
        ("page.md:11", DATABASES),
    ]
    with Tracker(database_url=f"sqlite:///{tmp_path / 'tracker.db'}") as tracker:
        failures = run_examples(tracker, "sqlite", found)
    assert [example.where for example, _ in failures] == ["page.md:4", "page.md:11"]
    with pytest.raises(DocumentError, match="unknown database"):
        examples(document, "```sql mysql\nSELECT 1\n```")
