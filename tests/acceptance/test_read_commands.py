"""The commands that only read (`list`, `history`, `stats`, `sql`, `watch`, `export`) create
no database where there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.conftest import Run, assert_usage_error

READS = [
    ["list"],
    ["history", "video_a"],
    ["stats"],
    ["sql", "SELECT COUNT(*) FROM tasks"],
    ["watch"],
    ["export"],
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
