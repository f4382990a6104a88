"""Keeping a finished video's files before its assets expire (``--download-dir``).

When a task completes, the finishing transaction writes one ``downloads`` row per variant
(video, thumbnail, spritesheet). The Downloader fetches due rows: it streams the bytes into a
temporary file in the download directory, hashing them on the way, makes the file durable and
only then renames it to its final name, so no partial file ever carries that name. A failed
attempt removes its temporary file and is retried with back-off until ``expires_at``; after
that the row records that the video expired undownloaded. Rows survive restarts.

Files are named after the task: ``<task id>.mp4``, ``<task id>.thumbnail.webp``,
``<task id>.spritesheet.jpg`` (the extension from the Content-Type). A task ID with characters
a file name should not hold has them replaced and a short hash of the ID appended.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Protocol

from tracker.core.backoff import Backoff
from tracker.core.follow_ups import DownloadJob, DownloadOutcome
from tracker.core.video import ASSETS_LAST
from tracker.daemon.running import Crew
from tracker.daemon.workers import ClaimingWorker
from tracker.errors import LocalResourceError
from tracker.http.transfers import TransferRefused
from tracker.store.follow_ups import FollowUpStore

logger = logging.getLogger(__name__)

# A failed attempt is tried again after 5 s, 10 s, 20 s…, at most 5 minutes apart.
RETRY = Backoff(first=5.0, cap=300.0, jitter=0.2)
DOWNLOADS_AT_ONCE = 4
# Leases are short, so a dead daemon's downloads are soon taken over, and renewed while a
# download runs; a single attempt may last at most ATTEMPT_TIMEOUT.
LEASE = timedelta(minutes=2)
RENEW_EVERY = timedelta(seconds=30)
ATTEMPT_TIMEOUT = timedelta(minutes=30)
STALE_PART = ATTEMPT_TIMEOUT + LEASE
PART = ".part"
_EXTENSIONS = {
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "video/quicktime": ".mov",
    "image/webp": ".webp",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


# File names are at most 255 bytes; stem and variant suffix (".spritesheet.webp") stay well under.
_LONGEST_STEM = 200


def file_stem(task_id: str) -> str:
    """A file name for the task: its ID where that is safe and short enough, else a cleaned,
    shortened ID plus a hash (so that different IDs never share a name)."""
    cleaned = _UNSAFE.sub("_", task_id)
    if cleaned == task_id and not task_id.startswith(".") and len(task_id) <= _LONGEST_STEM:
        return task_id
    digest = hashlib.sha256(task_id.encode()).hexdigest()[:10]
    return f"{cleaned.lstrip('.')[: _LONGEST_STEM - 11]}-{digest}"


def file_name(task_id: str, variant: str, content_type: str) -> str:
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), ".bin")
    middle = "" if variant == "video" else f".{variant}"
    return f"{file_stem(task_id)}{middle}{extension}"


class ContentSource(Protocol):
    async def download(self, task_id: str, variant: str, write: Callable[[bytes], None]) -> str: ...


class Downloader(ClaimingWorker[DownloadJob]):
    """Fetches due downloads, a few at a time, beside the polling. A download interrupted by
    a shutdown loses its temporary file and is tried again later."""

    kind = "downloads"

    def __init__(
        self,
        store: FollowUpStore,
        sources: Mapping[str, ContentSource],
        directory: Path,
        crew: Crew,
        *,
        concurrency: int = DOWNLOADS_AT_ONCE,
        task_id: str | None = None,
    ) -> None:
        super().__init__(crew, concurrency=concurrency)
        self._store = store
        self._sources = sources  # by provider
        self._directory = directory
        self._owner = crew.owner
        self._rng = crew.rng
        self._task_id = task_id  # `tracker download ID`: that task's files only
        self.done = 0
        _remove_stale_parts(directory)

    async def _claim(self, now: datetime, room: int) -> list[DownloadJob]:
        return await self._database.run(
            self._store.claim_downloads,
            self._owner,
            now,
            now + LEASE,
            room,
            self._task_id,
            list(self._sources),
        )

    def _key(self, job: DownloadJob) -> Hashable:
        return (job.task_id, job.variant)

    async def _run(self, job: DownloadJob) -> DownloadOutcome:
        return await self.attempt(job)

    async def attempt(self, job: DownloadJob) -> DownloadOutcome:
        """One try at one download, recorded; returns how it ended."""
        now = self._clock.now()
        if job.expires_at is not None and now >= job.expires_at:
            outcome = DownloadOutcome("expired", now, error=_expired(job))
            logger.warning(
                "%s of %s expired before it could be downloaded", job.variant, job.task_id
            )
        else:
            renewing = asyncio.create_task(self._renew(job))
            try:
                outcome = await self._fetch(job)
            finally:
                renewing.cancel()
        try:
            await self._database.run(self._store.record_download, self._owner, job, outcome)
        except Exception as exc:  # not written: the lease ends and the download is tried again
            logger.warning("recording the download of %s failed: %s", job.task_id, exc)
        if outcome.next_attempt_at is not None:
            self._retry_at(outcome.next_attempt_at)
        return outcome

    async def _renew(self, job: DownloadJob) -> None:
        """A long download keeps its lease, short as it is so a dead daemon's are soon free."""
        while True:
            await asyncio.sleep(RENEW_EVERY.total_seconds())
            try:
                await self._database.run(
                    self._store.renew_download, self._owner, job, self._clock.now() + LEASE
                )
            except Exception as exc:
                logger.warning("renewing the lease of a download failed: %s", exc)

    async def _fetch(self, job: DownloadJob) -> DownloadOutcome:
        # The temporary name is short whatever the task ID, and starts with a dot.
        key = hashlib.sha256(job.task_id.encode()).hexdigest()[:16]
        temporary = self._directory / f".{key}.{job.variant}.{secrets.token_hex(4)}{PART}"
        digest = hashlib.sha256()
        size = 0
        try:
            with open(temporary, "wb") as file:

                def write(chunk: bytes) -> None:
                    nonlocal size
                    file.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)

                source = self._sources.get(job.provider)
                if source is None:
                    # Retried like any failure: the files wait for a configuration naming it.
                    raise LookupError(f"the provider {job.provider!r} is not configured")
                async with asyncio.timeout(ATTEMPT_TIMEOUT.total_seconds()):
                    content_type = await source.download(job.task_id, job.variant, write)
                await asyncio.to_thread(_flush_to_disk, file)
            final = self._directory / file_name(job.task_id, job.variant, content_type)
            os.replace(temporary, final)
            await asyncio.to_thread(_sync_directory, self._directory)
        except BaseException as exc:
            temporary.unlink(missing_ok=True)
            if not isinstance(exc, Exception):
                raise  # cancelled: nothing recorded, the row stays pending
            shortage = exc if isinstance(exc, LocalResourceError) else None
            if isinstance(exc, OSError):
                shortage = LocalResourceError.of(exc, "no file for a download could be opened")
            if shortage is not None:
                raise shortage from None  # this machine's, not the download's: tried again
            error = (
                f"no complete download within {ATTEMPT_TIMEOUT}"
                if isinstance(exc, TimeoutError)
                else str(exc) or type(exc).__name__
            )
            if isinstance(exc, TransferRefused):
                logger.error(
                    "downloading %s of %s failed for good: %s", job.variant, job.task_id, error
                )
                return DownloadOutcome("failed", self._clock.now(), error=error)
            return self._retry(job, error)
        self.done += 1
        logger.info("downloaded %s of %s to %s (%d bytes)", job.variant, job.task_id, final, size)
        return DownloadOutcome(
            "done",
            self._clock.now(),
            path=str(final),
            size_bytes=size,
            sha256=digest.hexdigest(),
        )

    def _retry(self, job: DownloadJob, error: str) -> DownloadOutcome:
        now = self._clock.now()
        retry_at = now + timedelta(seconds=RETRY.delay(job.attempts, self._rng))
        expires_at = job.expires_at or now + ASSETS_LAST
        logger.warning("downloading %s of %s failed (%s)", job.variant, job.task_id, error)
        # Never waits past the expiry: the attempt due then records the download expired.
        return DownloadOutcome(
            "pending", now, error=error, next_attempt_at=min(retry_at, expires_at)
        )


def _expired(job: DownloadJob) -> str:
    return "the assets expired before the download succeeded" + (
        f" (last error: {job.last_error})" if job.last_error else ""
    )


def _remove_stale_parts(directory: Path) -> None:
    """Temporary files a killed daemon left behind: never valid, safe to remove once older
    than any running download's lease."""
    if not directory.is_dir():
        return
    cutoff = time.time() - STALE_PART.total_seconds()
    for part in directory.glob(f".*{PART}"):
        with contextlib.suppress(OSError):
            if part.stat().st_mtime < cutoff:
                part.unlink()


def _flush_to_disk(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
