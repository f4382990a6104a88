"""Requests this machine has no resources for (``LocalResourceError``: no open file, socket
buffer, memory or port left): the daemon's trouble, not the task's (docs/failures.md). Such a
request waits, holding its slot, until another request ends and so frees a connection, and is
sent again; no snapshot is written and the task owes no back-off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import datetime

from tracker.core.clock import Clock
from tracker.daemon.writes import REPEAT_ERROR_EVERY
from tracker.errors import LocalResourceError

logger = logging.getLogger(__name__)

# With no other request in flight to end, a request short of resources tries again this often.
RETRY_SECONDS = 1.0


class Shortage:
    """Requests waiting for a resource to free, and the ERROR line that says so: at most one
    every REPEAT_ERROR_EVERY, however often the daemon runs short meanwhile."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._logged_at: datetime | None = None
        self.requests_delayed = 0

    async def wait(self, error: LocalResourceError) -> None:
        """Say ``error`` and wait until a request ends, or RETRY_SECONDS."""
        self.requests_delayed += 1
        now = self._clock.now()
        if self._logged_at is None or now - self._logged_at >= REPEAT_ERROR_EVERY:
            self._logged_at = now
            logger.error(
                "%s; requests wait for others to end and are sent again, their tasks are not "
                "failed (%d delayed so far): raise the open-file limit or lower --concurrency "
                "(docs/scaling.md)",
                error,
                self.requests_delayed,
            )
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await asyncio.wait_for(turn, RETRY_SECONDS)
        except TimeoutError:
            pass
        finally:
            with contextlib.suppress(ValueError):  # not there once its turn came
                self._waiting.remove(turn)

    def answered(self) -> None:
        """A request was sent and ended: its connection is free for the request that waited
        longest."""
        while self._waiting:
            turn = self._waiting.popleft()
            if not turn.done():  # one whose wait just timed out is on its way already
                turn.set_result(None)
                break
