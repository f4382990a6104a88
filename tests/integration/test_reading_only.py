"""A Tracker that only reads (`read_only=True`, what `list`, `history`, `stats`, `sql`, `watch`
and `export` use), on a real SQLite file and a real PostgreSQL database: it reads a database at
the newest schema, and creates, migrates and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from tracker import DatabaseError, NoDatabaseError, Tracker
from tracker.store import migrations
from tracker.store.engine import create_engine, reported_errors


def test_it_reads_a_database_at_the_newest_schema(database_url: str) -> None:
    with Tracker(database_url) as writer:
        writer.add(["video_a"], label="kept")
    with Tracker(database_url, read_only=True) as reader:
        assert [(task.task_id, task.label) for task in reader.tasks()] == [("video_a", "kept")]
        assert reader.stats().unfinished == 1
        assert reader.sql("SELECT COUNT(*) FROM tasks").rows == [(1,)]


def test_it_writes_nothing_even_when_asked(database_url: str) -> None:
    """A write through a reading Tracker fails in the database itself (SQLite's query_only,
    PostgreSQL's read-only transactions) and leaves everything as it was."""
    with Tracker(database_url) as writer:
        writer.add(["video_a"])
    with (
        Tracker(database_url, read_only=True) as reader,
        pytest.raises(DatabaseError, match=r"^the database failed: .*read"),
        reported_errors(),
    ):
        reader.remove(["video_a"])
    with Tracker(database_url) as writer:
        assert [task.finished for task in writer.tasks()] == [False]


def test_a_schema_behind_the_newest_is_not_migrated(database_url: str) -> None:
    """At an older revision: DatabaseError naming the revision and `tracker db upgrade`, and
    the database stays at that revision."""
    engine = create_engine(database_url)
    config = migrations.alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    with (
        Tracker(database_url, read_only=True) as reader,
        pytest.raises(DatabaseError, match=r"revision 0004 .*`tracker db upgrade`"),
    ):
        reader.tasks()
    assert migrations.current_revision(engine) == "0004"
    engine.dispose()


def test_a_database_without_the_tables_is_not_given_them(database_url: str) -> None:
    """An empty database (PostgreSQL's, or an SQLite file of something else): DatabaseError
    saying `tracker db upgrade` creates the tables; none is created."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE other (x INTEGER)"))
    with (
        Tracker(database_url, read_only=True) as reader,
        pytest.raises(DatabaseError, match="has no tracker tables: `tracker db upgrade`"),
    ):
        reader.stats()
    with engine.connect() as connection:
        assert migrations.current_revision(engine) is None
        tables = connection.execute(
            text("SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'tasks'")
            if engine.dialect.name == "postgresql"
            else text("SELECT COUNT(*) FROM sqlite_master WHERE name = 'tasks'")
        ).scalar()
    assert tables == 0
    engine.dispose()


def test_an_sqlite_file_that_is_not_there_is_not_made(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.db"
    with (
        Tracker(f"sqlite:///{path}", read_only=True) as reader,
        pytest.raises(NoDatabaseError, match=f"no database at {path}"),
    ):
        reader.tasks()
    assert list(tmp_path.iterdir()) == []
