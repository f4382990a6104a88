"""Notifications of finished tasks, at least once and never lost.

An event is built when a task finishes and written to the ``outbox`` table in the transaction
that finishes it, one row per channel: ``webhook`` (a POST to ``--notify-url``, signed the
Standard Webhooks way when TRACKER_NOTIFY_SECRET is set) and ``command`` (``--on-finish``, run
with the event in ``TRACKER_*`` variables). The Notifier delivers due rows, retrying with
back-off for a day, and records each outcome; a restart carries on from the table. A task whose
files are still being downloaded is notified once they are settled, so the event can say where
the video was saved. Retries keep the event's ``webhook-id``, so receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import tempfile
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO, Protocol

from tracker.core.backoff import Backoff
from tracker.core.follow_ups import EventJob, EventOutcome
from tracker.daemon.running import Crew
from tracker.daemon.workers import ClaimingWorker
from tracker.errors import LocalResourceError
from tracker.http.signing import signed_headers
from tracker.store.follow_ups import FollowUpStore

logger = logging.getLogger(__name__)

GIVE_UP_AFTER = timedelta(days=1)
# A failed delivery is tried again after 2 s, 4 s, 8 s…, at most 5 minutes apart, for a day.
RETRY = Backoff(first=2.0, cap=300.0, jitter=0.2)
COMMAND_OUTPUT_KEPT = 500
NOTIFICATIONS_AT_ONCE = 8


class Poster(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> None: ...


@dataclass(frozen=True)
class Channels:
    """Where events go; what is not configured stays undelivered in the outbox."""

    url: str | None = None
    poster: Poster | None = None
    key: bytes | None = None  # signs webhooks when set
    command: tuple[str, ...] = ()
    command_timeout: float = 60.0
    command_environment: dict[str, str] | None = None  # the base environment, secrets removed


class Notifier(ClaimingWorker[EventJob]):
    """Delivers due outbox rows; slow or dead receivers never hold up polling. A delivery
    interrupted by a shutdown stays pending and is made again later (at least once)."""

    kind = "notifications"

    def __init__(
        self,
        outbox: FollowUpStore,
        channels: Channels,
        crew: Crew,
        *,
        concurrency: int = NOTIFICATIONS_AT_ONCE,
        timeout: float = 30.0,
        channels_claimed: tuple[str, ...] = ("webhook", "command"),
    ) -> None:
        super().__init__(crew, concurrency=concurrency)
        self._channels_claimed = channels_claimed
        self._outbox = outbox
        self._channels = channels
        self._owner = crew.owner
        self._rng = crew.rng
        # Every delivery ends (or is killed) well within its lease: never two at once.
        self._timeout = timeout
        self._lease = timedelta(seconds=max(channels.command_timeout, timeout) + 60)
        self.delivered = 0

    async def _claim(self, now: datetime, room: int) -> list[EventJob]:
        return await self._database.run(
            self._outbox.claim_events,
            self._owner,
            now,
            now + self._lease,
            room,
            self._channels_claimed,
        )

    def _key(self, job: EventJob) -> Hashable:
        return job.id

    async def _run(self, job: EventJob) -> None:
        await self._deliver(job)

    async def _deliver(self, job: EventJob) -> None:
        try:
            error = await self._send(job)
        except LocalResourceError:
            raise  # this machine's shortage, not the receiver's: sent again, no attempt counted
        except Exception as exc:  # a bug must not lose the event: it is retried
            logger.exception("delivering %s failed unexpectedly", job.event_id)
            error = f"{type(exc).__name__}: {exc}"
        outcome = self._outcome(job, error)
        if outcome.state == "delivered":
            self.delivered += 1
            logger.info("notified %s of %s (%s)", job.channel, job.task_id, job.event_id)
        elif outcome.state == "given_up":
            logger.error(
                "gave up notifying %s of %s after %d attempts: %s",
                job.channel,
                job.task_id,
                job.attempts + 1,
                error,
            )
        else:
            logger.warning(
                "notifying %s of %s failed (%s); retrying at %s",
                job.channel,
                job.task_id,
                error,
                outcome.next_attempt_at,
            )
        try:
            await self._database.run(self._outbox.record_event, self._owner, job, outcome)
        except Exception as exc:
            # Not written: the lease ends and the event is delivered again (at least once).
            logger.warning("recording the delivery of %s failed: %s", job.event_id, exc)
        if outcome.next_attempt_at is not None:
            self._retry_at(outcome.next_attempt_at)

    async def _send(self, job: EventJob) -> str | None:
        """Deliver on the job's channel; None on success, else what went wrong."""
        channels = self._channels
        if job.channel == "webhook":
            if channels.url is None or channels.poster is None:
                return "no --notify-url configured"
            body = json.dumps(job.payload, ensure_ascii=False).encode()
            headers = {"webhook-id": job.event_id}
            if channels.key is not None:
                stamp = int(self._clock.now().timestamp())
                headers = signed_headers(channels.key, job.event_id, stamp, body)
            try:
                async with asyncio.timeout(self._timeout):  # a trickling receiver included
                    await channels.poster.post(channels.url, body, headers)
            except TimeoutError:
                return f"no answer within {self._timeout:g}s"
            except LocalResourceError:
                raise
            except Exception as exc:
                return str(exc)
            return None
        if not channels.command:
            return "no --on-finish command configured"
        return await self._run_command(job)

    async def _run_command(self, job: EventJob) -> str | None:
        channels = self._channels
        payload = job.payload
        environment = dict(channels.command_environment or {})
        environment.update(
            {
                "TRACKER_EVENT_ID": job.event_id,
                "TRACKER_TASK_ID": job.task_id,
                "TRACKER_LABEL": payload.get("label") or "",
                "TRACKER_METADATA": ""
                if payload.get("metadata") is None
                else json.dumps(payload["metadata"]),
                "TRACKER_STATUS": payload.get("status") or "",
                "TRACKER_FINISH_REASON": payload.get("finish_reason") or "",
                "TRACKER_FINISHED_AT": payload.get("finished_at") or "",
                "TRACKER_PROGRESS": ""
                if payload.get("progress") is None
                else str(payload["progress"]),
                "TRACKER_ERROR": ""
                if payload.get("error") is None
                else json.dumps(payload["error"]),
                "TRACKER_VIDEO": ""
                if payload.get("video") is None
                else json.dumps(payload["video"]),
                "TRACKER_DOWNLOAD_PATH": payload.get("download_path") or "",
            }
        )
        # Output goes to a file, not a pipe: a background job the command started may keep
        # writing long after the command exits, and the command's exit is what counts.
        with tempfile.TemporaryFile() as output:
            try:
                # A session of its own: on a timeout or a shutdown the whole group is killed,
                # children it started included, not only the command itself.
                process = await asyncio.create_subprocess_exec(
                    *channels.command,
                    env=environment,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                shortage = LocalResourceError.of(exc, "--on-finish could not be started")
                if shortage is not None:
                    raise shortage from None
                return f"cannot run {channels.command[0]!r}: {exc.strerror or exc}"
            try:
                await asyncio.wait_for(process.wait(), channels.command_timeout)
            except BaseException as exc:
                _kill_group(process.pid)
                await process.wait()
                if isinstance(exc, TimeoutError):
                    return f"--on-finish took longer than {channels.command_timeout:g}s; killed"
                raise
            if process.returncode != 0:
                tail = _tail(output).decode(errors="replace")[-COMMAND_OUTPUT_KEPT:].strip()
                return f"--on-finish exited with {process.returncode}: {tail}"
        return None

    def _outcome(self, job: EventJob, error: str | None) -> EventOutcome:
        now = self._clock.now()
        if error is None:
            return EventOutcome("delivered", now)
        if now - job.created_at >= GIVE_UP_AFTER:
            return EventOutcome("given_up", now, error=error)
        wait = RETRY.delay(job.attempts, self._rng)
        return EventOutcome(
            "pending", now, error=error, next_attempt_at=now + timedelta(seconds=wait)
        )


def _tail(output: BinaryIO) -> bytes:
    """The end of the command's output: enough for COMMAND_OUTPUT_KEPT characters."""
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - COMMAND_OUTPUT_KEPT * 4))
    return output.read()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
