"""One database and the stores on it."""

from __future__ import annotations

from sqlalchemy import Engine

from tracker.store.engine import create_engine
from tracker.store.feed import FeedStore
from tracker.store.follow_ups import FollowUpStore
from tracker.store.leases import LeaseStore
from tracker.store.migrations import ensure_schema
from tracker.store.polls import PollStore
from tracker.store.prune import RetentionStore
from tracker.store.reads import Reads
from tracker.store.sandbox import ReadOnlySQL
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
        self.polls = PollStore(engine, self.wakeups)
        self.leases = LeaseStore(engine, self.wakeups)
        self.follow_ups = FollowUpStore(engine, self.wakeups)
        self.reads = Reads(engine)
        self.feed = FeedStore(engine)
        self.retention = RetentionStore(engine)
        self.sql = ReadOnlySQL(engine)
        self.timelines = Timelines(engine)

    @classmethod
    def open(cls, url: str) -> Database:
        engine = create_engine(url)
        try:
            ensure_schema(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()
