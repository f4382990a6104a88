"""Poll results on their way to the database: kept in memory, written each tick in one
transaction for every lane of the daemon, and kept again when the write fails, so that a
database that is locked or gone for a while loses nothing (docs/failures.md)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from tracker.core.clock import Clock
from tracker.core.models import PollRecord
from tracker.core.pauses import Pause
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.rules import due_at_once
from tracker.store.engine import reason

logger = logging.getLogger(__name__)

# A trouble that lasts (the database down, no open file left) is said again this often.
REPEAT_ERROR_EVERY = timedelta(seconds=30)


class ResultStore(Protocol):
    """What the buffer needs from storage (``tracker.store.polls.PollStore``)."""

    def record_polls(self, owner: str, records: Sequence[PollRecord]) -> int: ...

    def release(self, owner: str, task_ids: Sequence[str]) -> None: ...

    def postpone(self, pause: Pause) -> None: ...


class WriteObserver(Protocol):
    def wrote(self, seconds: float) -> None: ...


class DatabaseHealth:
    """Whether the database answers, said in the log once when it stops (then every half
    minute while it lasts) and once when it is back."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.down_since: datetime | None = None
        self._logged_at: datetime | None = None

    def failed(self, action: str, exc: Exception) -> None:
        now = self._clock.now()
        first = self.down_since is None
        if first:
            self.down_since = now
        elif self._logged_at and now - self._logged_at < REPEAT_ERROR_EVERY:
            return
        self._logged_at = now
        logger.error(
            "%s failed (%s: %s); results stay in memory and are retried every tick",
            action,
            type(exc).__name__,
            reason(exc),
            exc_info=first and logger.isEnabledFor(logging.DEBUG),
        )

    def recovered(self) -> None:
        if self.down_since is not None:
            logger.warning("the database is writable again; results kept were written")
            self.down_since = None


class WriteBuffer:
    """Results, tasks to give back and providers' pauses, waiting for the next write. The lanes
    of a daemon share one: whichever flushes first writes every lane's results in one
    transaction, not one per provider."""

    def __init__(
        self,
        store: ResultStore,
        database: DatabaseThread,
        owner: str,
        health: DatabaseHealth,
        observer: WriteObserver,
    ) -> None:
        self._store = store
        self._database = database
        self._owner = owner
        self.health = health
        self._observer = observer
        self._results: list[tuple[str, PollRecord]] = []  # each with its lane
        self._unwritten: Counter[str] = Counter()  # results waiting, by lane
        self._unstarted: list[tuple[str, str]] = []  # lane, task ID
        self._pauses: dict[str, Pause] = {}  # by provider: a lane's
        # One write at a time: a lane whose flush finds another's under way waits for it, and
        # then sees what that one could not write.
        self._flushing = asyncio.Lock()

    @property
    def results(self) -> list[PollRecord]:
        return [record for _, record in self._results]

    def pending(self, lane: str) -> bool:
        """Whether anything of ``lane``'s waits: results, tasks to give back, its pause."""
        return bool(
            self._unwritten[lane]
            or lane in self._pauses
            or any(own == lane for own, _ in self._unstarted)
        )

    def add(self, record: PollRecord, lane: str) -> None:
        """A result of ``lane``'s (its provider's) poll."""
        self._results.append((lane, record))
        self._unwritten[lane] += 1

    def unwritten(self, lane: str) -> int:
        """How many of ``lane``'s results wait: tasks it still holds the leases of."""
        return self._unwritten[lane]

    def give_back(self, task_id: str, lane: str) -> None:
        """A task ``lane`` claimed and did not poll: its lease is released at the next write."""
        self._unstarted.append((lane, task_id))

    def postpone(self, pause: Pause) -> None:
        """Store the pause (and hold its provider's unfinished tasks until it ends) at the next
        write."""
        waiting = self._pauses.get(pause.provider)
        self._pauses[pause.provider] = pause if waiting is None else waiting.then(pause)

    def due_at_once(self, task_id: str, lane: str, now: datetime) -> None:
        """The task's result waiting here, if ``lane``'s, is written due at ``now``: a webhook
        said it changed (another lane's result is its own lane's to decide, pause and all)."""
        self._results = [
            (own, due_at_once(record, now) if own == lane and record.task_id == task_id else record)
            for own, record in self._results
        ]

    async def flush(self) -> None:
        """Write what waits; keep it for the next try if the write fails."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        results, self._results = self._results, []
        self._unwritten = Counter()
        unstarted, self._unstarted = self._unstarted, []
        pauses, self._pauses = list(self._pauses.values()), {}
        writing = bool(results or unstarted or pauses)
        try:
            if results:
                records = [record for _, record in results]
                began = time.perf_counter()
                written = await self._database.run(self._store.record_polls, self._owner, records)
                self._observer.wrote(time.perf_counter() - began)
                if written < len(records):
                    logger.info(
                        "%d poll results dropped: their tasks were removed, taken over by "
                        "another daemon or finished by an earlier poll meanwhile",
                        len(records) - written,
                    )
                results = []  # written: not to be kept again if what follows fails
            if unstarted:
                task_ids = [task_id for _, task_id in unstarted]
                await self._database.run(self._store.release, self._owner, task_ids)
                unstarted = []
            while pauses:
                await self._database.run(self._store.postpone, pauses[0])
                pauses.pop(0)
        except BaseException as exc:
            self._results[:0] = results
            self._unwritten.update(lane for lane, _ in results)
            self._unstarted[:0] = unstarted
            for pause in pauses:  # before any decided since: the later ones count last
                self._pauses[pause.provider] = (
                    pause.then(self._pauses[pause.provider])
                    if pause.provider in self._pauses
                    else pause
                )
            if not isinstance(exc, Exception):
                raise
            self.health.failed(f"writing {len(self._results)} poll results", exc)
        else:
            if writing:  # only a call that went through says the database is back
                self.health.recovered()
