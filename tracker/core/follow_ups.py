"""What a finished task owes, as records: its files to download and its notifications to
send, the jobs claimed to do them, and how each attempt ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracker.core.ids import DEFAULT_PROVIDER

VARIANTS = ("video", "thumbnail", "spritesheet")
CHANNELS = ("webhook", "command")
DOWNLOAD_STATES = ("pending", "done", "expired", "failed")
EVENT_STATES = ("pending", "delivered", "given_up")


@dataclass(frozen=True)
class FollowUps:
    """What a daemon owes a task once it finishes: files to keep, notifications to send."""

    variants: tuple[str, ...] = ()  # downloaded when the task completes
    channels: tuple[str, ...] = ()  # notified whatever the finish reason

    def __bool__(self) -> bool:
        return bool(self.variants or self.channels)


@dataclass(frozen=True)
class NewEvent:
    """A notification for the outbox, written with the finish that caused it."""

    channel: str
    event_id: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class NewDownload:
    """A file to fetch before ``expires_at``, written with the finish that caused it."""

    variant: str
    expires_at: datetime


@dataclass(frozen=True)
class DownloadJob:
    """A claimed download."""

    task_id: str
    variant: str
    attempts: int
    expires_at: datetime | None
    last_error: str | None = None
    provider: str = DEFAULT_PROVIDER  # whose API (and key) serves the files


@dataclass(frozen=True)
class Download:
    """One row of ``downloads``."""

    task_id: str
    variant: str
    state: str
    path: str | None
    size_bytes: int | None
    sha256: str | None
    downloaded_at: datetime | None
    expires_at: datetime | None
    attempts: int
    next_attempt_at: datetime
    last_error: str | None


@dataclass(frozen=True)
class EventJob:
    """A claimed notification, its payload completed with the download path."""

    id: int
    task_id: str
    channel: str
    event_id: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(frozen=True)
class DownloadOutcome:
    """How one download attempt ended: ``done``, ``pending`` again (a retry at
    ``next_attempt_at``), ``expired`` or ``failed``."""

    state: str
    at: datetime
    path: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class EventOutcome:
    """How one delivery attempt ended: ``delivered``, ``pending`` again or ``given_up``."""

    state: str
    at: datetime
    error: str | None = None
    next_attempt_at: datetime | None = None
