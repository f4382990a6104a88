"""Bringing a database to the newest schema with the Alembic migrations in ``migrations/``.

The migrations live at the top of the repository and ship inside the package as
``tracker.migrations``. Run from a source checkout (``python -m tracker`` in the repository
root), the source ``tracker/`` package shadows the installed one and has no ``migrations``
inside it; the top-level folder beside it is used then.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from tracker.errors import DatabaseError
from tracker.store.engine import WRITE, describe, reason

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration. Every command checks the database against it before anything else, so
# it is a constant rather than Alembic's answer (loading Alembic and the migrations costs a
# quarter of a second); a test keeps it equal to the head of migrations/versions.
HEAD_REVISION = "0012"


def _migrations_dir() -> Path:
    spec = importlib.util.find_spec("tracker.migrations")
    if spec is not None and spec.origin is not None:
        return Path(spec.origin).parent
    return Path(__file__).resolve().parents[2] / "migrations"


MIGRATIONS_DIR = _migrations_dir()


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot read the database {describe(engine)}: {reason(exc)}") from exc


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to head (or ``revision``); concurrent callers wait for each other (SQLite write
    lock, PostgreSQL advisory lock in env.py) and the later ones find nothing left to do."""
    from alembic import command
    from alembic.util import CommandError

    config = alembic_config()
    try:
        with engine.connect() as connection:
            connection.execution_options(**WRITE)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except SQLAlchemyError as exc:
        raise DatabaseError(
            f"cannot migrate the database {describe(engine)}: {reason(exc)}"
        ) from exc
    except CommandError as exc:  # e.g. a revision from a newer tracker
        raise DatabaseError(
            f"cannot migrate the database {describe(engine)}: {exc}; is this tracker older "
            "than the one that last migrated it?"
        ) from exc


def require_head(engine: Engine) -> None:
    """For reading without writing: DatabaseError, saying what to do, unless the schema is the
    newest (a read never migrates)."""
    revision = current_revision(engine)
    if revision == HEAD_REVISION:
        return
    where = f"the database {describe(engine)}"
    if revision is None:
        raise DatabaseError(f"{where} has no tracker tables: `tracker db upgrade` creates them")
    if not _known(revision):
        raise DatabaseError(
            f"{where} is at revision {revision}, which this tracker does not know: is this "
            "tracker older than the one that last migrated it?"
        )
    raise DatabaseError(
        f"{where} is at revision {revision} and this tracker reads {HEAD_REVISION}: "
        "`tracker db upgrade` migrates it (reading does not)"
    )


def _known(revision: str) -> bool:
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        ScriptDirectory.from_config(alembic_config()).get_revision(revision)
    except CommandError:
        return False
    return True


def ensure_schema(engine: Engine) -> None:
    """Bring the database to head unless it is there already (the common, cheap case)."""
    if _stored_revision(engine) != HEAD_REVISION:
        upgrade(engine)


def _stored_revision(engine: Engine) -> str | None:
    """The revision in alembic_version, or None where it cannot be read (a new database;
    upgrade() then reports any real trouble)."""
    try:
        with engine.connect() as connection:
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            return revision.scalar()
    except SQLAlchemyError:
        return None
