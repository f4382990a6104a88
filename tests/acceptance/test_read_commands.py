"""The commands that only read (`list`, `history`, `stats`, `sql`, `watch`, `export`,
`report`) never write: no database is created where there is none, none is migrated, and one
the user may not write is read as it stands."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import TRACKER, Run, assert_usage_error

READS = [
    ["list"],
    ["history", "video_a"],
    ["stats"],
    ["sql", "SELECT COUNT(*) FROM tasks"],
    ["watch"],
    ["export"],
    ["report"],
]


@pytest.mark.parametrize("command", READS, ids=lambda command: command[0])
def test_a_read_where_there_is_no_database_creates_none(
    tracker: Run, workdir: Path, command: list[str]
) -> None:
    """In a directory without the database (the default `tracker.db`, or the file `--db`
    names): exit 2 with one line saying there is none and how to make or name one, and no
    file is left behind."""
    result = tracker(*command)
    assert_usage_error(
        result, f"no database at {workdir / 'tracker.db'}", "`tracker add` creates one", "--db"
    )
    other = workdir / "elsewhere.db"
    result = tracker("--db", f"sqlite:///{other}", *command)
    assert_usage_error(result, f"no database at {other}")
    assert list(workdir.iterdir()) == []


def test_a_read_of_a_database_behind_the_schema_says_to_upgrade_it(
    tracker: Run, workdir: Path
) -> None:
    """A database at an older revision is not migrated by a read: `list` exits 1 with one line
    naming `tracker db upgrade`, and the revision stays; after the upgrade it reads."""
    assert tracker("add", "video_a").returncode == 0
    database = sqlite3.connect(workdir / "tracker.db")
    with database:
        database.execute("UPDATE alembic_version SET version_num = '0004'")
    result = tracker("list")
    assert result.returncode == 1, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "tracker db upgrade" in lines[0] and "0004" in lines[0]
    assert database.execute("SELECT version_num FROM alembic_version").fetchall() == [("0004",)]
    database.close()


def _as_a_reader() -> list[str]:
    """The prefix that runs a command without the right to write what it may not: as root,
    without the capabilities that let root write past permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: no way to take away root's writes")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_a_database_that_may_not_be_written_is_read(tracker: Run, workdir: Path) -> None:
    """A database file and its directory the user may not write (as on a read-only file
    system): every read command reads it, and a write is refused by the file system itself,
    so the test really is read-only."""
    assert tracker("add", "video_a", "--label", "kept").returncode == 0
    database = workdir / "tracker.db"
    database.chmod(0o444)
    workdir.chmod(0o555)
    try:

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*_as_a_reader(), TRACKER, "--db", f"sqlite:///{database}", *args],
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=60,
            )

        refused = run("add", "video_b")
        assert refused.returncode == 1 and "readonly" in refused.stderr, refused
        listed = run("list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [row["label"] for row in json.loads(listed.stdout)] == ["kept"]
        for command in (["stats"], ["history", "video_a"], ["export", "--table", "tasks"]):
            result = run(*command)
            assert result.returncode == 0, (command, result.stderr)
            assert "Traceback" not in result.stderr
        counted = run("sql", "--csv", "SELECT COUNT(*) AS n FROM tasks")
        assert (counted.returncode, counted.stdout) == (0, "n\n1\n"), counted.stderr
        assert sorted(path.name for path in workdir.iterdir()) == ["tracker.db"]
    finally:
        workdir.chmod(0o755)
        database.chmod(0o644)
