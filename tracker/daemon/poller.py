"""Polling: claims due tasks, polls them through the API client with bounded concurrency, and
writes the results back in one transaction per tick.

The rules live beside it: ``rules`` (what one answer does to its task), ``pause`` (the
account-wide pauses), ``shortage`` (requests this machine has no resources for), ``claims``
(what to claim and when a claim may still start), ``writes`` (results on their way to the
database); what a finished task owes is ``tracker.core.owed``'s rule. The poller is handed its
storage, its API client, its lane (one provider's settings) and the daemon's crew (its clock,
its database thread, its wakeups).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol

from tracker.core.follow_ups import FollowUps
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.models import (
    ClaimedTask,
    FetchResult,
    PassSummary,
    PollRecord,
)
from tracker.core.owed import owed_by_poll
from tracker.daemon.claims import Claimer
from tracker.daemon.observing import Observer, Unobserved, log_poll
from tracker.daemon.pause import AccountPause
from tracker.daemon.rules import Policy, changed, decide, due_at_once
from tracker.daemon.running import Crew, Running
from tracker.daemon.shortage import Shortage
from tracker.daemon.writes import DatabaseHealth, WriteBuffer
from tracker.errors import LocalResourceError
from tracker.store.polls import PollStore

logger = logging.getLogger(__name__)

# While the database is down and no result waits, a claim tries it this often.
PROBE_SECONDS = 1.0
# While nothing is due or in flight, the database is asked at most this often (and at the
# earliest due time): on PostgreSQL, while the daemon hears other processes' writes, a task
# registered or made due anywhere wakes it (docs/scaling.md); otherwise a task another process
# registers is polled within a second.
LOOK_SECONDS = 5.0
UNHEARD_LOOK_SECONDS = 1.0


class VideoAPI(Protocol):
    async def fetch(self, task_id: str) -> FetchResult:
        """One status request; failures come back as a FetchResult with ``failure`` set, but
        for LocalResourceError, which is raised: this machine's trouble, not the task's."""


@dataclass(frozen=True)
class Lane:
    """One provider's polling (docs/providers.md): its rules, its requests in flight, what it
    records."""

    policy: Policy
    provider: str = DEFAULT_PROVIDER
    concurrency: int = 32
    record_changes_only: bool = False
    # With a providers file even `default` is one provider among others, named in log lines.
    provider_named: bool = False


class Poller:
    def __init__(
        self,
        store: PollStore,
        api: VideoAPI,
        lane: Lane,
        crew: Crew,
        *,
        follow_ups: FollowUps | None = None,
        observer: Observer | None = None,
        writes: WriteBuffer | None = None,
    ) -> None:
        """``writes``: the daemon's buffer, which its lanes share (one of its own without)."""
        self.provider = lane.provider
        self._store = store
        self._api = api
        self._policy = policy = lane.policy
        self._clock = crew.clock
        self._database = crew.database
        self._wakeups = crew.wakeups
        self._rng = crew.rng
        self._follow_ups = follow_ups or FollowUps()
        self._record_changes_only = lane.record_changes_only
        self._observer = observer or Unobserved()
        self._slots = asyncio.Semaphore(lane.concurrency)
        self._claims = Claimer(
            store, crew.claims_database, crew.owner, policy, lane.concurrency, lane.provider
        )
        self._claims_beside_writes = crew.claiming is not None
        self._writes = writes or WriteBuffer(
            store, crew.database, crew.owner, DatabaseHealth(crew.clock), self._observer
        )
        self.health = self._writes.health
        self.pause = AccountPause(
            policy,
            crew.clock,
            self._rng,
            self._writes.postpone,
            lane.provider,
            lane.provider_named,
        )
        self.shortage = Shortage(crew.clock)
        # Claimed tasks being polled; one cancelled by a drain is given back.
        self._in_flight: Running[str, PollRecord | None] = Running(
            lane.concurrency, partial(self._writes.give_back, lane=lane.provider)
        )
        # Tasks a webhook made due while a poll of theirs was under way (see poll_soon).
        self._due_again: set[str] = set()
        self._stopping = False
        # Ticks and sweeps take turns with the database; one that finds the other still running
        # returns at once instead of queueing behind it in the database thread.
        self._database_work = asyncio.Lock()
        self._next_probe = 0.0
        # Idle: no claim before this time unless woken; at it, claim if it is the earliest due
        # time, else look for one first.
        self._quiet_until: datetime | None = None
        self._quiet_until_due = False
        self._claimed_all_due = False
        self.polls = 0
        self.finished = 0

    @property
    def held(self) -> int:
        return len(self._in_flight) + self._writes.unwritten(self.provider)

    @property
    def busy(self) -> bool:
        """Polls in flight or results not written yet."""
        return bool(self._in_flight) or self._writes.pending(self.provider)

    async def tick(self) -> None:
        """Write what finished since the last tick and claim and start what is due: on
        PostgreSQL both at once, elsewhere the claim after the write."""
        if self._database_work.locked():  # a slow database made jobs overlap: skip this one
            return
        async with self._database_work:
            await self._write_and_claim()
        # Only a tick that got through counts: one stuck on a database call that never
        # returns must make the daemon look stalled (/healthz), not merely busy.
        self._observer.ticked()

    async def _write_and_claim(self) -> None:
        if self._claims_beside_writes and self.health.down_since is None:
            # Requests go on while results are written: the claim runs beside the write, on a
            # thread of its own (docs/performance.md).
            _, failure = await asyncio.gather(self._writes.flush(), self._claim_failure())
            if failure is not None:  # said last, so a write that worked does not hide it
                self.health.failed("claiming due tasks", failure)
            return
        await self._writes.flush()
        if self._stopping:
            return
        if self.health.down_since is not None:
            # While writes fail, results pile up in memory: claim no more until they are
            # saved. With none waiting, a claim now and then is what finds the database back.
            if self._writes.unwritten(self.provider) or time.monotonic() < self._next_probe:
                return
            self._next_probe = time.monotonic() + PROBE_SECONDS
            self._quiet_until = None  # only a query finds the database back
        failure = await self._claim_failure()
        if failure is None:
            self.health.recovered()
        else:
            self.health.failed("claiming due tasks", failure)

    async def _claim_failure(self) -> Exception | None:
        """Claim and start what is due; what the claim raised, if it failed."""
        try:
            await self._claim_and_start()
        except Exception as exc:
            return exc
        return None

    async def _claim_and_start(self) -> None:
        now = self._clock.now()
        if self.pause.active(now):
            return
        room = self._claims.room(self.held, self.polls, time.monotonic())
        if room <= 0:
            return
        if self._quiet_until is not None:
            if now < self._quiet_until:
                return
            look_first = not self._quiet_until_due
            self._quiet_until = None
            if look_first and await self._quiet(now):
                return
        elif self._claimed_all_due and not self.busy:
            # The last claim took everything then due, and it is done: whether more is due
            # now is a read of the due index's first entry, cheaper than a claim.
            self._claimed_all_due = False
            if await self._quiet(now):
                return
        if self._stopping:  # the stop may have come during the write or the look above
            return
        claimed = await self._claims.claim(now, room)
        self._claimed_all_due = 0 < len(claimed) < room
        for task in claimed:
            # One whose own lease ran out while it waited is still going: not started again.
            self._in_flight.start(task.task_id, self._poll(task, now))
        if not claimed and not self.busy:
            await self._quiet(now)

    async def _quiet(self, now: datetime) -> bool:
        """With nothing claimed, nothing in flight and nothing to write (tasks given back
        included: they are still leased): whether nothing is due at ``now`` either; then no
        claim until the earliest due time, and no query for up to a look's time (or an
        interval, if shorter), unless woken."""
        due = await self._database.run(self._store.next_due, now, self.provider)
        if due is not None and due <= now:
            return False
        check = now + timedelta(seconds=min(self._look_seconds(), self._policy.interval))
        self._quiet_until_due = due is not None and due <= check
        self._quiet_until = due if due is not None and self._quiet_until_due else check
        return True

    def wake(self) -> None:
        """Tasks were registered, made due or given back: the next tick claims, whatever the
        idle wait said."""
        self._quiet_until = None

    def rest_seconds(self) -> float:
        """How long the poller has nothing to do unless woken: until its next look or the end
        of a pause, at most a look's time; 0 while it has work."""
        if self.busy:
            return 0.0
        now = self._clock.now()
        until = self._quiet_until
        if self.pause.active(now):
            until = self.pause.until
        if until is None:
            return 0.0
        return min(self._look_seconds(), max(0.0, (until - now).total_seconds()))

    def _look_seconds(self) -> float:
        return LOOK_SECONDS if self._wakeups.listening else UNHEARD_LOOK_SECONDS

    async def sweep(self) -> list[str]:
        """Finish as ``timed_out`` the tasks past give-up-after that no poll will reach first."""
        if self._database_work.locked() or self.health.down_since is not None:
            return []
        async with self._database_work:
            now = self._clock.now()
            cutoff = now - timedelta(seconds=self._policy.give_up_after)
            try:
                timed_out = await self._database.run(
                    partial(
                        self._store.finish_timed_out,
                        channels=self._follow_ups.channels,
                        provider=self.provider,
                    ),
                    now,
                    cutoff,
                )
            except Exception as exc:
                self.health.failed("finishing tasks past give-up-after", exc)
                return []
        for task_id in timed_out:
            logger.info(
                "task %s finished: timed_out (unfinished after %gs)",
                task_id,
                self._policy.give_up_after,
            )
        self.finished += len(timed_out)
        return timed_out

    async def has_unfinished(self) -> bool:
        return await self._database.run(self._store.has_unfinished, [self.provider])

    async def poll_pass(self, all_unfinished: bool = False) -> PassSummary:
        """Poll every due unfinished task once (every unfinished one with ``all_unfinished``)."""
        summary = PassSummary()
        await self.sweep()
        started = self._clock.now()
        while not self.pause.active(self._clock.now()):
            now = self._clock.now()
            claimed = await self._claims.claim(
                now,
                self._claims.limit,
                include_not_due=all_unfinished,
                polled_before=started,
            )
            if not claimed:
                break
            records = await asyncio.gather(*(self._poll(task, now) for task in claimed))
            for record in records:
                if record is not None:
                    summary.polled += 1
                    summary.finished += record.finished
                    summary.errors += record.fetch.error is not None
            await self._writes.flush()
        await self._writes.flush()
        summary.paused_until = self.pause.until
        summary.refused = self.pause.auth_failures > 0
        summary.unwritten = self._writes.unwritten(self.provider)
        return summary

    async def flush(self) -> None:
        """Write the results waiting in memory (kept for the next try if the write fails)."""
        await self._writes.flush()

    async def drain(self, timeout: float) -> None:
        """Stop claiming, let requests in flight finish for up to ``timeout`` seconds, give back
        the tasks not started, and write everything."""
        self._stopping = True
        # A tick still claiming finishes first, so what it claimed is polled or given back.
        async with self._database_work:
            await self._in_flight.drain(timeout)
            await self._writes.flush()
        if unwritten := self._writes.unwritten(self.provider):
            logger.error(
                "%d poll results could not be written before exit; their tasks are polled "
                "again after the restart",
                unwritten,
            )

    async def _poll(self, task: ClaimedTask, claimed_at: datetime) -> PollRecord | None:
        """Poll one claimed task; its result waits in memory for the next write."""
        try:
            async with self._slots:
                while True:
                    now = self._clock.now()
                    late = not self._claims.may_start(claimed_at, now)
                    if self._stopping or late or self.pause.active(now):
                        self._writes.give_back(task.task_id, self.provider)
                        return None
                    try:
                        fetch = await self._api.fetch(task.task_id)
                    except LocalResourceError as exc:
                        await self.shortage.wait(exc)  # the slot is kept: it is this request's
                    else:
                        break
                self.shortage.answered()
            record = decide(task, fetch, now, self._policy, self._rng)
            if task.task_id in self._due_again:
                self._due_again.discard(task.task_id)
                record = due_at_once(record, self._clock.now())
            record = self.pause.apply(record)
            if record.finished and self._follow_ups:
                downloads, events = owed_by_poll(self._follow_ups, task, record)
                record = replace(record, downloads=downloads, events=events)
            if self._record_changes_only and not changed(task, record):
                record = replace(record, store_snapshot=False)
        except Exception:
            # A bug must not leave the task leased and unpolled: give it back and go on.
            logger.exception("polling task %s failed unexpectedly; it is given back", task.task_id)
            self._writes.give_back(task.task_id, self.provider)
            return None
        self._writes.add(record, self.provider)
        self.polls += 1
        self.finished += record.finished
        lateness = (now - task.next_poll_at).total_seconds()
        self._observer.polled(record, lateness)
        log_poll(record)
        return record

    def poll_soon(self, task_id: str) -> None:
        """A webhook said the task changed, and the database now has it due. A poll of it sent
        before the news, or its result not yet written, would put its next poll an interval
        away again: it is kept due instead."""
        if task_id in self._in_flight:
            self._due_again.add(task_id)
        self.wake()
        now = self._clock.now()
        if self.pause.active(now):
            return  # the account's pause wins; the results already wait for it
        self._writes.due_at_once(task_id, self.provider, now)
