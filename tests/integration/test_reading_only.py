"""A Tracker that only reads (`read_only=True`, what `list`, `history`, `stats`, `sql`, `watch`
and `export` use) creates no database."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker import NoDatabaseError, Tracker


def test_an_sqlite_file_that_is_not_there_is_not_made(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.db"
    with (
        Tracker(f"sqlite:///{path}", read_only=True) as reader,
        pytest.raises(NoDatabaseError, match=f"no database at {path}"),
    ):
        reader.tasks()
    assert list(tmp_path.iterdir()) == []
