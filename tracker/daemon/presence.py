"""A daemon's row in ``daemons`` (tracker/core/daemons.py): made when it starts, refreshed
every beat with the tasks it holds and its polls of the last minute, marked stopped when it
stops cleanly. One that is killed stops beating, and is shown lost three beats later."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import deque
from dataclasses import replace

from tracker._version import __version__
from tracker.core.daemons import BEAT_SECONDS, FORGOTTEN_AFTER, DaemonRow
from tracker.daemon.lanes import Lanes
from tracker.daemon.running import Crew
from tracker.daemon.scheduler import Job
from tracker.store.daemons import DaemonStore
from tracker.store.engine import reason

logger = logging.getLogger(__name__)

MINUTE = 60.0
# Rows of daemons long gone are forgotten at start and then once an hour, not at every beat.
FORGET_EVERY_BEATS = round(3600 / BEAT_SECONDS)


class Presence:
    def __init__(self, store: DaemonStore, lanes: Lanes, crew: Crew) -> None:
        self._store = store
        self._lanes = lanes
        self._crew = crew
        now = crew.clock.now()
        self._row = DaemonRow(
            daemon_id=crew.owner,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
            started_at=now,
            last_seen_at=now,
            stopped_at=None,
            providers=[poller.provider for poller in lanes.pollers],
            held=0,
            polls_last_minute=0,
        )
        self._counted: deque[tuple[float, int]] = deque()  # (monotonic time, polls so far)
        self._failing = False
        self._beats = 0

    async def beat(self) -> None:
        """Refresh the row; once in a while, forget the rows of daemons long gone."""
        now = self._crew.clock.now()
        self._row = replace(
            self._row, last_seen_at=now, held=self._lanes.held, polls_last_minute=self._polls()
        )
        try:
            await self._crew.database.run(self._store.beat, self._row)
            if self._beats % FORGET_EVERY_BEATS == 0:
                await self._crew.database.run(self._store.forget, now - FORGOTTEN_AFTER)
        except Exception as exc:  # the polling reports a database that is down
            if not self._failing:
                logger.debug("refreshing this daemon's row failed: %s", reason(exc))
            self._failing = True
        else:
            self._failing = False
            self._beats += 1

    def _polls(self) -> int:
        polls, at = self._lanes.polls, time.monotonic()
        self._counted.append((at, polls))
        while self._counted[0][0] < at - MINUTE:
            self._counted.popleft()
        return polls - self._counted[0][1]

    def job(self) -> Job:
        return Job("beat", BEAT_SECONDS, self.beat, first_after=BEAT_SECONDS)

    # A service of the lifecycle: the row made as it starts, marked stopped as it stops.

    async def start(self) -> None:
        await self.beat()

    async def stop(self, timeout: float) -> None:
        at = self._crew.clock.now()
        try:
            await self._crew.database.run(self._store.stopped, self._row.daemon_id, at)
        except Exception as exc:
            logger.warning("marking this daemon stopped failed (%s): it shows lost", reason(exc))
