"""The records that pass between the API client, the poller and the stores."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tracker.core.follow_ups import NewDownload, NewEvent
from tracker.core.ids import DEFAULT_PROVIDER
from tracker.core.video import Video

if TYPE_CHECKING:
    from tracker.core.pauses import Pause


class FinishReason(enum.StrEnum):
    """Why a task is no longer polled (the ``finish_reason`` column)."""

    COMPLETED = "completed"
    FAILED = "failed"
    NOT_FOUND = "not_found"
    TIMED_OUT = "timed_out"
    REMOVED = "removed"


class Failure(enum.StrEnum):
    """What went wrong with a poll: the ``type`` of its snapshot's ``error`` when tracker, not
    the API, describes the failure."""

    TIMEOUT = "timeout"
    CONNECTION = "connection_error"
    BODY_TOO_LARGE = "body_too_large"
    REDIRECT = "redirect"
    INVALID_JSON = "invalid_json"
    NOT_A_VIDEO = "not_a_video"
    HTTP_STATUS = "http_error"  # an error status without the API's own error object
    API_ERROR = "api_error"  # the API's own error object is stored as it came
    RELAY_ERROR = "relay_error"  # a relay's envelope said the request failed
    ID_MISMATCH = "id_mismatch"  # the answer is about another task
    UNSTORABLE = "unstorable"


class Answer(enum.Enum):
    """What one request for a task's status says, decided once (``FetchResult.answer``) for
    the polling rules, the account's pauses and the metrics alike (docs/failures.md)."""

    VIDEO = "video"  # a video object about the task
    NOT_FOUND = "not_found"  # 404
    REFUSED = "refused"  # 401 or 403: the account's token, not the task
    RATE_LIMITED = "rate_limited"  # 429: the account's pace
    SERVER_ERROR = "server_error"  # 5xx
    CLIENT_ERROR = "client_error"  # another 4xx, or 3xx
    INVALID_ANSWER = "invalid_answer"  # 2xx without a video object about the task
    TIMEOUT = "timeout"  # no answer in time
    CONNECTION_ERROR = "connection_error"  # no answer at all


@dataclass(frozen=True)
class Task:
    """One row of ``tasks``; field names are the column names (docs/tables.md)."""

    task_id: str
    label: str | None
    status: str | None
    progress: int | None
    finished: bool
    finish_reason: str | None
    registered_at: datetime
    last_polled_at: datetime | None
    next_poll_at: datetime
    finished_at: datetime | None
    poll_count: int
    error_count: int
    last_error: str | None
    model: str | None
    seconds: str | None
    size: str | None
    created_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    not_found_count: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    metadata: Any = None  # the application's own JSON object
    provider: str = DEFAULT_PROVIDER
    first_running_at: datetime | None = None  # the first poll that saw the video being made
    reopened_at: datetime | None = None  # when it was last watched again after it ended

    @classmethod
    def registered(
        cls,
        task_id: str,
        label: str | None,
        now: datetime,
        metadata: Any = None,
        provider: str = DEFAULT_PROVIDER,
    ) -> Task:
        """A task as ``tracker add`` leaves it: due at once, never polled."""
        return cls(
            task_id=task_id,
            label=label,
            status=None,
            progress=None,
            finished=False,
            finish_reason=None,
            registered_at=now,
            last_polled_at=None,
            next_poll_at=now,
            finished_at=None,
            poll_count=0,
            error_count=0,
            last_error=None,
            model=None,
            seconds=None,
            size=None,
            created_at=None,
            completed_at=None,
            expires_at=None,
            not_found_count=0,
            lease_owner=None,
            lease_expires_at=None,
            metadata=metadata,
            provider=provider,
        )


@dataclass(frozen=True)
class NewTask:
    """A task to register, with what its application gave along."""

    task_id: str
    label: str | None = None
    metadata: Any = None
    provider: str = DEFAULT_PROVIDER


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks a list shows; None leaves a criterion out."""

    status: str | None = None  # the last status, any case
    finished: bool | None = None
    label: str | None = None
    provider: str | None = None
    prefix: str | None = None  # task IDs starting with this
    finish_reason: str | None = None  # how it finished (a FinishReason)
    error: str | None = None  # text in the last error (``last_error``), any case


class SortKey(enum.StrEnum):
    """What a list of tasks can be sorted by: a column of ``tasks``."""

    REGISTERED_AT = "registered_at"
    LAST_POLLED_AT = "last_polled_at"
    PROGRESS = "progress"
    STATUS = "status"  # in any case


@dataclass(frozen=True)
class TaskOrder:
    """How a list of tasks is sorted: by ``key``, tasks of one value by registration and then
    ID, all in one direction. Tasks without a value (never polled, no progress or status yet)
    come last either way."""

    key: SortKey = SortKey.REGISTERED_AT
    descending: bool = True


NEWEST_FIRST = TaskOrder()


@dataclass(frozen=True)
class Position:
    """Where a page of tasks ended, in its order: the next page starts after it. Newest first,
    tasks registered meanwhile come before the first page, so paging on never repeats or skips
    one; in another order a task whose value moves meanwhile may."""

    registered_at: datetime
    task_id: str
    value: Any = None  # the task's value of the order's key, unless that is registered_at


@dataclass(frozen=True)
class Snapshot:
    """One row of ``snapshots``: what one poll saw."""

    id: int
    task_id: str
    polled_at: datetime
    http_status: int | None
    status: str | None
    progress: int | None
    error: Any
    body: Any
    finished: bool
    latency_ms: float | None


@dataclass(frozen=True)
class ClaimedTask:
    """What the poller needs to know about a task it holds the lease on."""

    task_id: str
    registered_at: datetime
    error_count: int
    not_found_count: int
    # When it was due, and what it last showed: for lateness and for recording only changes.
    next_poll_at: datetime
    status: str | None = None
    progress: int | None = None
    last_error: str | None = None
    provider: str = DEFAULT_PROVIDER
    # Given back in the events of its finish.
    label: str | None = None
    metadata: Any = None
    poll_count: int = 0
    reopened_at: datetime | None = None

    @property
    def watched_since(self) -> datetime:
        """Where give-up-after counts from: its registration, or its last reopening."""
        return self.reopened_at or self.registered_at


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one request for a task's status, whatever went wrong.

    ``failure`` is None when the request succeeded and the body was a video object; otherwise
    it says what failed, and ``error`` is the API's error object or a ``{"type", "message"}``
    description of the failure.
    """

    http_status: int | None
    latency_ms: float
    body: str | None
    video: Video | None
    error: Any
    retry_after: float | None = None
    poll_after: float | None = None
    failure: Failure | None = None

    @classmethod
    def failed(
        cls,
        failure: Failure,
        message: str,
        latency_ms: float,
        *,
        http_status: int | None = None,
        body: str | None = None,
        retry_after: float | None = None,
        poll_after: float | None = None,
    ) -> FetchResult:
        """A failure tracker describes itself: ``{"type": failure, "message": message}``."""
        error = {"type": failure.value, "message": message}
        return cls(
            http_status, latency_ms, body, None, error, retry_after, poll_after, failure=failure
        )

    @property
    def answer(self) -> Answer:
        status = self.http_status
        if self.video is not None:
            return Answer.VIDEO
        if status is None:
            return Answer.TIMEOUT if self.failure is Failure.TIMEOUT else Answer.CONNECTION_ERROR
        if status == 404:
            return Answer.NOT_FOUND
        if status in (401, 403):
            return Answer.REFUSED
        if status == 429:
            return Answer.RATE_LIMITED
        if status >= 500:
            return Answer.SERVER_ERROR
        if 200 <= status < 300:
            return Answer.INVALID_ANSWER
        return Answer.CLIENT_ERROR


@dataclass(frozen=True)
class PollRecord:
    """Everything one poll writes: a snapshot row, the task's new state, and what it owes."""

    task_id: str
    polled_at: datetime
    fetch: FetchResult
    next_poll_at: datetime
    error_count: int
    not_found_count: int
    last_error: str | None
    finish_reason: FinishReason | None
    downloads: tuple[NewDownload, ...] = ()
    events: tuple[NewEvent, ...] = ()
    store_snapshot: bool = True  # False under --record changes when nothing changed
    # A snapshot retention never drops: the task's first, a new status, the last (docs/tables.md).
    kept: bool = False

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def snapshot_error(self) -> Any:
        """The API's error object on a video that reports one, or what went wrong."""
        if self.fetch.video is not None and self.fetch.error is None:
            return self.fetch.video.error
        return self.fetch.error


@dataclass(frozen=True)
class AddResult:
    added: list[str]
    existing: list[str]


@dataclass(frozen=True)
class AddCount:
    """How many IDs a streamed add registered, and how many were registered already (an ID
    given twice counts there the second time)."""

    added: int
    existing: int


@dataclass(frozen=True)
class RemoveResult:
    removed: list[str]
    already_finished: list[str]


@dataclass(frozen=True)
class Gauges:
    """What the metrics show of the database at one moment, each read in bounded time at any
    size: counts kept as they change (finished tasks, settled follow-ups), indexes of the
    unfinished tasks, and the backlog counted up to a bound (docs/operating.md)."""

    at: datetime
    unfinished: int
    finished: dict[str, int]  # by finish_reason
    due: int  # unfinished, due now, held by nobody: counted up to DUE_COUNTED_UP_TO
    oldest_unfinished: datetime | None
    downloads: dict[str, int]  # by state
    notifications: dict[str, int]  # by state
    paused: list[Pause]  # the pauses in force
    unfinished_by_provider: dict[str, int]


@dataclass(frozen=True)
class Stats:
    """A summary of the database at one moment (`tracker stats`, `watch`): the gauges, and
    what costs a look at every task (what is held, the polls in all)."""

    at: datetime
    unfinished: int
    finished: dict[str, int]  # by finish_reason
    due: int  # unfinished, due now, held by nobody: work waiting for a daemon
    held: int  # claimed by a daemon right now
    oldest_unfinished: datetime | None
    snapshots_last_minute: int
    errors_last_minute: int
    polls_total: int  # the sum of every task's poll_count
    downloads: dict[str, int]  # by state
    notifications: dict[str, int]  # by state
    paused: list[Pause] = field(default_factory=list)  # the pauses in force
    unfinished_by_provider: dict[str, int] = field(default_factory=dict)


@dataclass
class PassSummary:
    """What one pass of ``tracker poll`` did."""

    polled: int = 0
    finished: int = 0
    errors: int = 0
    paused_until: datetime | None = None
    refused: bool = False  # the API refused the token (401/403)
    unwritten: int = 0  # results the database would not take
