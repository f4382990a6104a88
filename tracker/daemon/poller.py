"""Polling: which task is polled when, and what each answer does to it (SPEC §6).

``decide`` holds the per-task rules and is a pure function of the task, the answer and the time.
``Poller`` holds the rules that span tasks (rate limits and authentication failures pause every
task) and the batching: it claims due tasks from the repository, polls them through the API
client with bounded concurrency, and writes the results back in one transaction per tick. It does
no I/O of its own: the repository, the client and the clock are handed to it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property, partial
from typing import Any, Protocol, TypeVar

from tracker.core.clock import Clock, SystemClock
from tracker.core.eventloop import finish_or_cancel
from tracker.core.models import (
    ClaimedTask,
    FetchResult,
    FinishReason,
    FollowUps,
    NewDownload,
    NewEvent,
    PollRecord,
    Task,
)
from tracker.core.video import Phase
from tracker.daemon.dbthread import DatabaseThread
from tracker.daemon.notify import finish_event, new_events
from tracker.settings import Settings
from tracker.store.repository import Repository

logger = logging.getLogger(__name__)

T = TypeVar("T")

AUTH_BACKOFF_CAP = 300.0
ASSETS_LAST = timedelta(hours=1)
DATABASE_LOG_EVERY = timedelta(seconds=30)
# While the database is down and no result waits, a claim tries it this often.
PROBE_SECONDS = 1.0
# Tasks claimed per request slot: enough queued to keep every slot busy between two ticks
# (measured: README, Performance); a task not started within its start window goes back.
CLAIM_AHEAD = 16
# Time allowed between a request's end and the write of its result (a tick, a slow commit).
WRITE_MARGIN = timedelta(seconds=5)
NOT_FOUND_LIMIT = 3


class VideoAPI(Protocol):
    async def fetch(self, task_id: str) -> FetchResult:
        """One status request; failures come back as a FetchResult with ``error`` set."""


class Observer(Protocol):
    """Is told what the poller does (the metrics, tracker.daemon.metrics); must not block."""

    def polled(self, record: PollRecord, lateness: float) -> None: ...

    def wrote(self, seconds: float) -> None: ...

    def ticked(self) -> None:
        """A tick wrote and claimed (or found the database down) and is done."""


class _Unobserved:
    def polled(self, record: PollRecord, lateness: float) -> None:
        pass

    def wrote(self, seconds: float) -> None:
        pass

    def ticked(self) -> None:
        pass


@dataclass(frozen=True)
class Policy:
    """The timing rules, from the settings."""

    interval: float
    give_up_after: float
    request_timeout: float
    jitter: float = 0.10
    backoff_cap: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            interval=settings.poll_interval,
            give_up_after=settings.give_up_after,
            request_timeout=settings.request_timeout,
        )

    @cached_property
    def lease(self) -> timedelta:
        """How long a claim holds: room to start the request, its whole timeout, and the write.
        A daemon that dies loses its claims this long after making them: a minute with the
        default 30 s timeout (SPEC §7)."""
        return timedelta(seconds=max(2 * self.request_timeout, self.request_timeout + 10.0))

    @cached_property
    def start_window(self) -> timedelta:
        """A claimed task whose request has not started this long after the claim is given back,
        so the request and the write of its result both end inside the lease."""
        return self.lease - timedelta(seconds=self.request_timeout) - WRITE_MARGIN

    def next_interval(self, rng: random.Random) -> float:
        return self.interval * rng.uniform(1 - self.jitter, 1 + self.jitter)

    def backoff(self, error_count: int, rng: random.Random) -> float:
        """Exponential in the consecutive errors, capped, with jitter that never passes the cap."""
        ceiling = min(self.interval * 2.0 ** min(error_count, 32), self.interval * self.backoff_cap)
        return ceiling * rng.uniform(0.5, 1.0)


def describe_error(fetch: FetchResult) -> str:
    """One line for ``tasks.last_error``."""
    error = fetch.error
    message = error.get("message") if isinstance(error, dict) else error
    text = str(message) if message not in (None, "") else "request failed"
    return f"HTTP {fetch.http_status}: {text}" if fetch.http_status is not None else text


def decide(
    task: ClaimedTask,
    fetch: FetchResult,
    polled_at: datetime,
    policy: Policy,
    rng: random.Random,
) -> PollRecord:
    """The per-task rules: what one answer does to the task that was polled."""
    answered_at = polled_at + timedelta(milliseconds=fetch.latency_ms)
    timed_out = answered_at - task.registered_at >= timedelta(seconds=policy.give_up_after)
    video = fetch.video
    not_found_count = task.not_found_count + 1 if fetch.http_status == 404 else 0
    if video is not None:
        # Success keeps the rhythm: the next poll is one interval after this one was sent.
        error_count, next_poll_at = 0, polled_at + timedelta(seconds=policy.next_interval(rng))
        reason = {Phase.SUCCEEDED: FinishReason.COMPLETED, Phase.FAILED: FinishReason.FAILED}.get(
            video.phase
        )
    elif fetch.http_status in (401, 403):
        # The account's trouble, not the task's: no per-task back-off; the Poller pauses all.
        error_count = task.error_count
        next_poll_at = answered_at + timedelta(seconds=policy.next_interval(rng))
        reason = None
    elif fetch.http_status == 404:
        # A task just created may not be visible yet on every replica: poll at the usual pace.
        error_count = task.error_count + 1
        next_poll_at = answered_at + timedelta(seconds=policy.next_interval(rng))
        reason = FinishReason.NOT_FOUND if not_found_count >= NOT_FOUND_LIMIT else None
    else:
        error_count = task.error_count + 1
        next_poll_at = answered_at + timedelta(seconds=policy.backoff(error_count, rng))
        reason = None
    if reason is None and timed_out:
        reason = FinishReason.TIMED_OUT
    # Waits the API asks for count from when its answer arrived.
    asked_wait = max(fetch.poll_after or 0.0, fetch.retry_after or 0.0)
    return PollRecord(
        task_id=task.task_id,
        polled_at=polled_at,
        fetch=fetch,
        next_poll_at=max(next_poll_at, answered_at + timedelta(seconds=asked_wait)),
        error_count=error_count,
        not_found_count=not_found_count,
        last_error=None if video is not None else describe_error(fetch),
        finish_reason=reason,
    )


def _changed(task: ClaimedTask, record: PollRecord) -> bool:
    """Whether a poll showed something new: another status, progress or error (the ``changes``
    recording mode stores only those, and the poll that finished the task)."""
    if record.finished:
        return True
    video = record.fetch.video
    if video is None:
        return record.last_error != task.last_error
    progress_moved = video.progress is not None and video.progress != task.progress
    return video.status != task.status or progress_moved or task.last_error is not None


def _due_at_once(record: PollRecord, now: datetime) -> PollRecord:
    if record.finished or record.next_poll_at <= now:
        return record
    return replace(record, next_poll_at=now)


def _log_poll(record: PollRecord) -> None:
    fetch = record.fetch
    video = fetch.video
    fields = {
        "task_id": record.task_id,
        "status": video.status if video else None,
        "http_status": fetch.http_status,
        "latency_ms": fetch.latency_ms,
    }
    if record.finish_reason is not None:
        fields["finish_reason"] = record.finish_reason.value
        logger.info(
            "task %s finished: %s (status %s)",
            record.task_id,
            record.finish_reason.value,
            video.status if video else fetch.http_status,
            extra=fields,
        )
    elif fetch.error is not None:
        fields["error"] = record.last_error
        logger.warning("task %s: poll failed: %s", record.task_id, record.last_error, extra=fields)
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "task %s: %s %s%%",
            record.task_id,
            video and video.status,
            video and video.progress,
            extra=fields,
        )


def _document(body: str | None) -> Any:
    try:
        return json.loads(body) if body is not None else None
    except ValueError:
        return None


@dataclass
class PassSummary:
    """What one pass of ``tracker poll`` did."""

    polled: int = 0
    finished: int = 0
    errors: int = 0
    paused_until: datetime | None = None
    refused: bool = False  # the API refused the token (401/403)
    unwritten: int = 0  # results the database would not take


class Poller:
    """Claims due tasks, polls them concurrently, writes the results in batches."""

    def __init__(
        self,
        repository: Repository,
        api: VideoAPI,
        *,
        policy: Policy,
        owner: str,
        concurrency: int = 32,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        follow_ups: FollowUps | None = None,
        database: DatabaseThread | None = None,
        record_changes_only: bool = False,
        observer: Observer | None = None,
    ) -> None:
        self._repository = repository
        self._record_changes_only = record_changes_only
        self._observer = observer or _Unobserved()
        self._follow_ups = follow_ups or FollowUps()
        self._api = api
        self._policy = policy
        self._owner = owner
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(concurrency)
        # Claimed ahead of the free slots, so the next request starts without waiting for a
        # tick; small enough that every claimed task starts well within its start window.
        self._claim_limit = concurrency * CLAIM_AHEAD
        self._database = database or DatabaseThread()
        self._owns_database = database is None
        self._in_flight: dict[str, asyncio.Task[PollRecord | None]] = {}
        self._results: list[PollRecord] = []
        self._unstarted: list[str] = []
        # Tasks a webhook made due while a poll of theirs was under way (see poll_soon).
        self._due_again: set[str] = set()
        self._paused_until: datetime | None = None
        self._auth_failures = 0
        self._refused_at: datetime | None = None
        self._stopping = False
        # Ticks and sweeps take turns with the database; one that finds the other still running
        # returns at once instead of queueing behind it in the database thread.
        self._database_work = asyncio.Lock()
        self._postpone_until: datetime | None = None
        self._database_down_since: datetime | None = None
        self._next_probe = 0.0
        self._database_logged_at: datetime | None = None
        self.polls = 0
        self.finished = 0

    async def _db(self, function: Callable[..., T], *args: Any) -> T:
        return await self._database.run(function, *args)

    @property
    def busy(self) -> bool:
        """Polls in flight or results not written yet."""
        return bool(self._in_flight or self._results or self._unstarted)

    @property
    def paused_until(self) -> datetime | None:
        return self._paused_until

    @property
    def auth_failures(self) -> int:
        """Consecutive refusals of the token (401/403)."""
        return self._auth_failures

    @property
    def database_down_since(self) -> datetime | None:
        """Since when writes or claims fail, or None while the database answers."""
        return self._database_down_since

    async def tick(self) -> None:
        """Write what finished since the last tick, then claim and start what is due."""
        if self._database_work.locked():  # a slow database made jobs overlap: skip this one
            return
        async with self._database_work:
            await self._write_and_claim()
        # Only a tick that got through counts: one stuck on a database call that never
        # returns must make the daemon look stalled (/healthz), not merely busy.
        self._observer.ticked()

    async def _write_and_claim(self) -> None:
        await self.flush()
        if self._stopping:
            return
        if self._database_down_since is not None:
            # While writes fail, results pile up in memory: claim no more until they are
            # saved. With none waiting, a claim now and then is what finds the database back.
            if self._results or time.monotonic() < self._next_probe:
                return
            self._next_probe = time.monotonic() + PROBE_SECONDS
        try:
            await self._claim_and_start()
        except Exception as exc:
            self._database_failed("claiming due tasks", exc)
        else:
            self._database_recovered()

    async def sweep(self) -> list[str]:
        """Finish as ``timed_out`` the tasks past give-up-after that no poll will reach first."""
        if self._database_work.locked() or self._database_down_since is not None:
            return []
        async with self._database_work:
            now = self._clock.now()
            cutoff = now - timedelta(seconds=self._policy.give_up_after)
            try:
                events_for = self._timed_out_events if self._follow_ups.channels else None
                timed_out = await self._db(
                    self._repository.finish_timed_out, now, cutoff, events_for
                )
            except Exception as exc:
                self._database_failed("finishing tasks past give-up-after", exc)
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
        return await self._db(self._repository.has_unfinished)

    async def poll_pass(self, all_unfinished: bool = False) -> PassSummary:
        """Poll every due unfinished task once (every unfinished one with ``all_unfinished``)."""
        summary = PassSummary()
        await self.sweep()
        started = self._clock.now()
        while not self._is_paused(self._clock.now()):
            now = self._clock.now()
            claimed = await self._db(
                partial(
                    self._repository.claim_due,
                    self._owner,
                    now,
                    now + self._policy.lease,
                    self._claim_limit,
                    include_not_due=all_unfinished,
                    polled_before=started,
                )
            )
            if not claimed:
                break
            records = await asyncio.gather(*(self._poll(task, now) for task in claimed))
            for record in records:
                if record is not None:
                    summary.polled += 1
                    summary.finished += record.finished
                    summary.errors += record.fetch.error is not None
            await self.flush()
        await self.flush()
        summary.paused_until = self._paused_until
        summary.refused = self._auth_failures > 0
        summary.unwritten = len(self._results)
        return summary

    async def flush(self) -> None:
        """Write the results waiting in memory; keep them for the next try if the write fails."""
        records, self._results = self._results, []
        unstarted, self._unstarted = self._unstarted, []
        postpone, self._postpone_until = self._postpone_until, None
        try:
            if records:
                began = time.perf_counter()
                written = await self._db(self._repository.record_polls, self._owner, records)
                self._observer.wrote(time.perf_counter() - began)
                if written < len(records):
                    logger.info(
                        "%d poll results dropped: their tasks were removed or taken over by "
                        "another daemon meanwhile",
                        len(records) - written,
                    )
            if unstarted:
                await self._db(self._repository.release, self._owner, unstarted)
            if postpone is not None:
                await self._db(self._repository.postpone, postpone)
        except BaseException as exc:
            self._results[:0] = records
            self._unstarted[:0] = unstarted
            if postpone is not None and self._postpone_until is None:
                self._postpone_until = postpone
            if not isinstance(exc, Exception):
                raise
            self._database_failed(f"writing {len(self._results)} poll results", exc)
        else:
            if records or unstarted or postpone is not None:
                self._database_recovered()

    def _database_recovered(self) -> None:
        if self._database_down_since is not None:
            logger.warning("the database is writable again; results kept were written")
            self._database_down_since = None

    def _database_failed(self, action: str, exc: Exception) -> None:
        """Log a database failure: once when it starts, then every half minute while it lasts."""
        now = self._clock.now()
        first = self._database_down_since is None
        if first:
            self._database_down_since = now
        elif self._database_logged_at and now - self._database_logged_at < DATABASE_LOG_EVERY:
            return
        self._database_logged_at = now
        logger.error(
            "%s failed (%s: %s); results stay in memory and are retried every tick",
            action,
            type(exc).__name__,
            str(exc).strip().splitlines()[0] if str(exc).strip() else "",
            exc_info=first and logger.isEnabledFor(logging.DEBUG),
        )

    async def drain(self, timeout: float) -> None:
        """Stop claiming, let requests in flight finish for up to ``timeout`` seconds, give back
        the tasks not started, and write everything."""
        self._stopping = True
        # A tick still claiming finishes first, so what it claimed is polled or given back.
        async with self._database_work:
            await finish_or_cancel(list(self._in_flight.values()), timeout)
            await self.flush()
        if self._results:
            logger.error(
                "%d poll results could not be written before exit; their tasks are polled "
                "again after the restart",
                len(self._results),
            )

    def close(self) -> None:
        if self._owns_database:
            self._database.close()

    async def _claim_and_start(self) -> None:
        now = self._clock.now()
        if self._is_paused(now):
            return
        room = self._claim_limit - len(self._in_flight) - len(self._results)
        if room <= 0:
            return
        claimed = await self._db(
            self._repository.claim_due, self._owner, now, now + self._policy.lease, room
        )
        for task in claimed:
            if task.task_id in self._in_flight:
                continue  # our own lease ran out while it waited; it is still going
            job = asyncio.create_task(self._poll(task, now))
            self._in_flight[task.task_id] = job
            job.add_done_callback(partial(self._forget, task.task_id))

    def _forget(self, task_id: str, job: asyncio.Task[PollRecord | None]) -> None:
        if self._in_flight.get(task_id) is job:
            del self._in_flight[task_id]
        if job.cancelled():
            self._unstarted.append(task_id)

    async def _poll(self, task: ClaimedTask, claimed_at: datetime) -> PollRecord | None:
        """Poll one claimed task; its result waits in memory for the next write."""
        try:
            async with self._slots:
                now = self._clock.now()
                late = now - claimed_at > self._policy.start_window
                if self._stopping or late or self._is_paused(now):
                    self._unstarted.append(task.task_id)
                    return None
                fetch = await self._api.fetch(task.task_id)
            record = decide(task, fetch, now, self._policy, self._rng)
            if task.task_id in self._due_again:
                self._due_again.discard(task.task_id)
                record = _due_at_once(record, self._clock.now())
            record = self._apply_account_rules(record)
            if record.finished and self._follow_ups:
                record = self._with_follow_ups(task, record)
            if self._record_changes_only and not _changed(task, record):
                record = replace(record, store_snapshot=False)
        except Exception:
            # A bug must not leave the task leased and unpolled: give it back and go on.
            logger.exception("polling task %s failed unexpectedly; it is given back", task.task_id)
            self._unstarted.append(task.task_id)
            return None
        self._results.append(record)
        self.polls += 1
        self.finished += record.finished
        lateness = (now - task.next_poll_at).total_seconds() if task.next_poll_at else 0.0
        self._observer.polled(record, lateness)
        _log_poll(record)
        return record

    def poll_soon(self, task_id: str) -> None:
        """A webhook said the task changed, and the database now has it due. A poll of it sent
        before the news, or its result not yet written, would put its next poll an interval
        away again: it is kept due instead."""
        if task_id in self._in_flight:
            self._due_again.add(task_id)
        now = self._clock.now()
        if self._is_paused(now):
            return  # the account's pause wins; the results already wait for it
        self._results = [
            _due_at_once(record, now) if record.task_id == task_id else record
            for record in self._results
        ]

    def _with_follow_ups(self, task: ClaimedTask, record: PollRecord) -> PollRecord:
        """What a finished task owes: its files if it completed, a notification per channel.
        A task finished without a video object (three 404s, give-up-after) is described by
        what it showed last."""
        video = record.fetch.video
        downloads: tuple[NewDownload, ...] = ()
        if record.finish_reason is FinishReason.COMPLETED:
            # Assets last about an hour after completion (SPEC §1) when the API does not say.
            expires_at = (video and video.expires_at) or record.polled_at + ASSETS_LAST
            downloads = tuple(NewDownload(v, expires_at) for v in self._follow_ups.variants)
        payload = finish_event(
            task_id=record.task_id,
            status=video.status if video else task.status,
            finish_reason=record.finish_reason,
            finished_at=record.polled_at,
            progress=video.progress if video else task.progress,
            error=record.snapshot_error,
            video=_document(record.fetch.body) if video else None,
        )
        return replace(
            record, downloads=downloads, events=new_events(self._follow_ups.channels, payload)
        )

    def _timed_out_events(self, task: Task) -> tuple[NewEvent, ...]:
        payload = finish_event(
            task_id=task.task_id,
            status=task.status,
            finish_reason=FinishReason.TIMED_OUT,
            finished_at=task.finished_at,
            progress=task.progress,
            error=None,
            video=None,
        )
        return new_events(self._follow_ups.channels, payload)

    def _apply_account_rules(self, record: PollRecord) -> PollRecord:
        """Rate limits and authentication failures belong to the account: they pause every
        task, and the task that met them waits at least as long."""
        status = record.fetch.http_status
        # Requests already in flight when a refusal came back say nothing new about the token.
        sent_before_refusal = self._refused_at is not None and record.polled_at <= self._refused_at
        if status in (401, 403) and not sent_before_refusal:
            self._auth_failures += 1
            self._refused_at = self._clock.now()
            doubling = 2.0 ** min(self._auth_failures - 1, 32)
            delay = min(self._policy.interval * doubling, AUTH_BACKOFF_CAP)
            self._pause_every_task(self._refused_at + timedelta(seconds=delay))
            logger.error(
                "the API refused the token (HTTP %s): pausing every task for %gs "
                "(attempt %d); check TRACKER_API_TOKEN",
                status,
                delay,
                self._auth_failures,
            )
        elif status == 429:
            wait = record.fetch.retry_after
            if wait is None:
                wait = self._policy.backoff(record.error_count, self._rng)
            until = self._clock.now() + timedelta(seconds=wait)  # counted from the answer
            self._pause_every_task(until)
            logger.warning("rate limited (HTTP 429): pausing every task for %gs", wait)
        elif record.fetch.video is not None and not sent_before_refusal:
            self._auth_failures = 0
            self._refused_at = None
        if self._paused_until is not None and record.next_poll_at < self._paused_until:
            return replace(record, next_poll_at=self._paused_until)
        return record

    def _pause_every_task(self, until: datetime) -> None:
        """Here, and stored in every task's next_poll_at at the next write, so that neither a
        restart nor a `tracker poll` asks the API again before ``until`` (SPEC §6.3)."""
        self._pause(until)
        self._postpone_until = max(until, self._postpone_until or until)

    def _is_paused(self, now: datetime) -> bool:
        return self._paused_until is not None and now < self._paused_until

    def _pause(self, until: datetime) -> None:
        if self._paused_until is None or until > self._paused_until:
            self._paused_until = until
