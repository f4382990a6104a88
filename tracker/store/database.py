"""One database and the stores on it."""

from __future__ import annotations

from sqlalchemy import Engine

from tracker.errors import DatabaseError, NoDatabaseError
from tracker.store.actions import TaskActions
from tracker.store.daemons import DaemonStore
from tracker.store.engine import as_it_stands, cannot_write_here, create_engine, sqlite_path
from tracker.store.feed import FeedStore
from tracker.store.follow_ups import FollowUpStore
from tracker.store.insights import Insights
from tracker.store.leases import LeaseStore
from tracker.store.migrations import ensure_schema, require_head
from tracker.store.partitions import Partitions
from tracker.store.polls import PollStore
from tracker.store.prune import RetentionStore
from tracker.store.reads import Reads
from tracker.store.report import Reports
from tracker.store.sandbox import ReadOnlySQL
from tracker.store.tallies import Tallies
from tracker.store.tasks import TaskStore
from tracker.store.timeline import Timelines
from tracker.store.wakeups import Wakeups


class Database:
    """Every store on one engine. ``Database.open(url)`` brings the schema to the newest
    migration first."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: Who waits on which writes, in this process; on PostgreSQL, other processes' too.
        self.wakeups = Wakeups(engine)
        self.tasks = TaskStore(engine, self.wakeups)
        self.actions = TaskActions(engine, self.wakeups)
        self.polls = PollStore(engine, self.wakeups)
        self.leases = LeaseStore(engine, self.wakeups)
        self.follow_ups = FollowUpStore(engine, self.wakeups)
        self.reads = Reads(engine)
        self.reports = Reports(engine)
        self.insights = Insights(engine)
        self.feed = FeedStore(engine)
        self.sql = ReadOnlySQL(engine)
        self.timelines = Timelines(engine)
        self.daemons = DaemonStore(engine)
        self.tallies = Tallies(engine)
        self.partitions = Partitions(engine)
        self.retention = RetentionStore(engine, self.partitions)

    @classmethod
    def open(cls, url: str) -> Database:
        engine = create_engine(url)
        try:
            ensure_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @classmethod
    def open_for_reading(cls, url: str) -> Database:
        """The database at ``url`` as it is, nothing written to it: an SQLite file that does
        not exist raises NoDatabaseError (none is created), a schema other than the newest
        DatabaseError (it is not migrated); an SQLite file this process may not write, or in
        a directory it may not write, is read all the same."""
        engine = create_engine(url, read_only=True)
        path = sqlite_path(engine)
        try:
            if path is not None and not path.exists():
                raise NoDatabaseError(str(path))
            try:
                require_head(engine)
            except DatabaseError as exc:
                if path is None or not cannot_write_here(exc.__cause__):
                    raise
                engine.dispose()
                engine = as_it_stands(path)
                require_head(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def concurrent_writers(self) -> bool:
        """Whether two transactions of one process may write at once: on PostgreSQL, which
        locks rows; not on SQLite, which has one writer at a time."""
        return self.engine.dialect.name != "sqlite"

    def close(self) -> None:
        self.engine.dispose()
