"""An SQLite too old for tracker's statements (no RETURNING, or no JSON functions) is refused
when the database is opened, in one line, instead of every write failing and being retried."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tracker.cli.main import main
from tracker.errors import DatabaseError
from tracker.store import engine
from tracker.store.engine import create_engine


def test_an_sqlite_before_returning_is_refused_with_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    with pytest.raises(
        DatabaseError, match=r"needs SQLite 3\.35\.0 or newer.* has SQLite 3\.34\.1"
    ):
        create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    assert main(["--db", f"sqlite:///{tmp_path / 'old.db'}", "add", "video_a"]) != 0
    error = capsys.readouterr().err
    assert "3.34.1" in error and "Traceback" not in error and len(error.splitlines()) == 1


def test_an_sqlite_without_json_functions_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_connect = sqlite3.connect

    def without_json(*args: object, **kwargs: object) -> sqlite3.Connection:
        connection = real_connect(*args, **kwargs)  # type: ignore[call-overload]
        # As a build without JSON1 answers: json_each is not there to read.
        connection.set_authorizer(
            lambda _action, *names: (
                sqlite3.SQLITE_DENY if "json_each" in names else sqlite3.SQLITE_OK
            )
        )
        return connection  # type: ignore[no-any-return]

    monkeypatch.setattr(sqlite3, "connect", without_json)
    with pytest.raises(DatabaseError, match="with its JSON functions; this one has none"):
        create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    assert sqlite3.sqlite_version_info >= engine.OLDEST_SQLITE


def test_the_sqlite_here_is_taken_and_reads_json(tmp_path: Path) -> None:
    fine = create_engine(f"sqlite:///{tmp_path / 'fine.db'}")
    with fine.connect() as connection:
        assert connection.exec_driver_sql("SELECT value FROM json_each('[7]')").scalar() == 7
    fine.dispose()
