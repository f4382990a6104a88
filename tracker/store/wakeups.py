"""Waking whoever waits on a write: a daemon for new or newly due tasks, the event feed for new
snapshots, the follow-up workers for downloads and notifications owed.

A write transaction tells its topics (``tell``): on PostgreSQL a ``NOTIFY`` in the same
transaction, delivered only if it commits, to every process that ``LISTEN``s; in this process,
once it has committed, every ``Signal`` of those topics is set (a daemon serving the HTTP API on
SQLite is woken this way). The news carries nothing: who wakes reads the tables.

NOTIFY is best effort: it is lost while the listening connection is down, and a process that
starts late never hears what came before. So every waiter also looks by itself now and then,
more often while ``Wakeups.listening`` is false (docs/scaling.md, Woken by writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from tracker.store.engine import reason as engine_reason

if TYPE_CHECKING:
    from psycopg.pq.abc import PGconn

logger = logging.getLogger(__name__)

_TOLD = "tracker_told"  # the topics a transaction has told, on its connection's info
# A connection that dies without a word (a cable pulled) is noticed within about half a minute.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5}
CONNECT_SECONDS = 10
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Topic(enum.StrEnum):
    """What a write changed; the values are the PostgreSQL channels."""

    TASKS = "tracker_tasks"  # registered, made due or given back: a daemon claims
    SNAPSHOTS = "tracker_snapshots"  # snapshots committed: the event feed reads
    FOLLOW_UPS = "tracker_follow_ups"  # downloads or notifications owed: the workers claim


def tell(connection: Connection, *topics: Topic) -> None:
    """Within a write transaction: its commit is news of ``topics``."""
    told: set[Topic] = connection.info.setdefault(_TOLD, set())
    for topic in topics:
        if topic in told:
            continue
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"NOTIFY {topic.value}")
        told.add(topic)


def told(connection: Connection) -> set[Topic]:
    """The topics the transaction on ``connection`` told, forgotten there."""
    topics: set[Topic] = connection.info.pop(_TOLD, set())
    return topics


class Signal:
    """One waiter's flag: set from any thread, awaited on the loop that made it."""

    def __init__(self, wakeups: Wakeups, topic: Topic) -> None:
        self._wakeups = wakeups
        self._topic = topic
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        self._event.clear()

    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout: float) -> bool:
        """Until set (True) or ``timeout`` seconds (False)."""
        if self._event.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), max(0.0, timeout))
            return True
        return False

    def close(self) -> None:
        self._wakeups.forget(self._topic, self)

    def __enter__(self) -> Signal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class Wakeups:
    """The signals of one process, and on PostgreSQL the one connection that LISTENs for the
    others' writes (``listen``, run by the process's lifecycle)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._signals: dict[Topic, set[Signal]] = {topic: set() for topic in Topic}
        self._lock = threading.Lock()
        #: Whether other processes' writes are heard now (PostgreSQL's LISTEN is up).
        self.listening = False

    def signal(self, topic: Topic) -> Signal:
        """A flag set by every write of ``topic`` from now on (close it when done)."""
        signal = Signal(self, topic)
        with self._lock:
            self._signals[topic].add(signal)
        return signal

    def forget(self, topic: Topic, signal: Signal) -> None:
        with self._lock:
            self._signals[topic].discard(signal)

    def announce(self, topics: Iterable[Topic]) -> None:
        """``topics`` were written (any thread may call this)."""
        with self._lock:
            signals = [signal for topic in topics for signal in self._signals[topic]]
        for signal in signals:
            signal.set()

    async def listen(self) -> None:
        """Hear other processes' writes until cancelled: on PostgreSQL, a connection that
        LISTENs, made again whenever it is lost (said once in the log, and once when back);
        elsewhere there is nothing to hear. What may have been missed meanwhile is announced."""
        if self._engine.dialect.name != "postgresql":
            return
        failures = 0
        lost = False  # said in the log and not back yet

        def up() -> None:
            nonlocal failures, lost
            if lost:
                logger.warning("hearing other processes' writes again (LISTEN)")
            failures, lost = 0, False

        while True:
            try:
                await self._listen_on_one_connection(up)
                reason = "the connection was closed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = engine_reason(exc)
            finally:
                self.listening = False
            if not lost:
                logger.warning(
                    "not hearing other processes' writes (LISTEN: %s); looking for work every "
                    "second until the connection is back",
                    reason,
                )
                lost = True
            self.announce(Topic)  # whoever waits looks now, then at the quicker pace
            await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            failures += 1

    async def _listen_on_one_connection(self, up: Callable[[], None]) -> None:
        import psycopg

        args, params = self._engine.dialect.create_connect_args(self._engine.url)
        params = {**params, **_KEEPALIVES, "connect_timeout": CONNECT_SECONDS}
        connection = await psycopg.AsyncConnection.connect(*args, autocommit=True, **params)
        async with connection:
            for topic in Topic:
                await connection.execute(f"LISTEN {topic.value}")
            self.listening = True
            up()
            self.announce(Topic)  # what came while nobody listened is looked at now
            await self._hear(connection.pgconn)

    async def _hear(self, pgconn: PGconn) -> None:
        """The notifications that arrive on ``pgconn`` until it is lost, read when its socket
        has something: psycopg's ``notifies()`` also wakes ten times a second, which was most of
        an idle daemon's CPU (docs/performance.md, Idle)."""
        from psycopg import pq

        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        # Watched through a socket number of its own: libpq closes its number when the
        # connection is lost, and the next socket opened gets it; a watch left on it kept the
        # loop from ever reading that socket (a client of `tracker serve`'s, say).
        watched = os.dup(pgconn.socket)
        try:
            loop.add_reader(watched, readable.set)
            while pgconn.status == pq.ConnStatus.OK:
                await readable.wait()
                readable.clear()
                pgconn.consume_input()  # psycopg.OperationalError once the connection is gone
                while (notice := pgconn.notifies()) is not None:
                    self._heard(notice.relname.decode())
        finally:
            try:
                loop.remove_reader(watched)
            finally:
                os.close(watched)

    def _heard(self, channel: str) -> None:
        try:
            topic = Topic(channel)
        except ValueError:
            return
        self.announce((topic,))
