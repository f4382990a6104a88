"""The video object the API answers and the rules for reading it, relays' variants included."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.core.ids import same_task

SUCCESS_STATUSES = frozenset({"completed", "succeeded", "success", "done"})
FAILURE_STATUSES = frozenset(
    {"failed", "failure", "fail", "error", "cancelled", "canceled", "expired"}
)
# Statuses that mean "waiting for its turn" rather than "being made", in the spellings of the
# APIs and relays tracker reads (docs/relays.md); every other unfinished status is running.
QUEUED_STATUSES = frozenset({"queued", "pending", "submitted", "waiting", "not_start", "created"})

# A completed video's files can be downloaded for about this long, when the API does not say.
ASSETS_LAST = timedelta(hours=1)
# Unix seconds pass this in the year 5138; anything bigger is a relay sending milliseconds.
_MILLISECONDS_THRESHOLD = 100_000_000_000
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%?\s*")
_ID_KEYS = ("id", "task_id", "taskId")  # relays' names for the task's ID
# An envelope's code when the request itself went through.
_ENVELOPE_OK = frozenset({"0", "200", "success"})
_SHOWN_ID = 100


class Phase(enum.Enum):
    """Where a task stands, whatever spelling the API used for its status."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @classmethod
    def of(cls, status: str) -> Phase:
        return _PHASES.get(status.strip().casefold(), _RUNNING)


# Phase.of runs for every poll: a dict lookup, not the class's members (attribute access on an
# enum class is slow before Python 3.12).
_RUNNING = Phase.RUNNING
_FAILED = Phase.FAILED
_PHASES = {
    **dict.fromkeys(SUCCESS_STATUSES, Phase.SUCCEEDED),
    **dict.fromkeys(FAILURE_STATUSES, _FAILED),
}
#: The statuses (folded) that say a video is not being made: waiting, or finished either way.
NOT_RUNNING_STATUSES = frozenset(_PHASES) | QUEUED_STATUSES


def is_running(status: str) -> bool:
    """Whether the video is being made: out of the queue, not finished (the report's queue
    time ends at the first poll that sees this)."""
    return status.strip().casefold() not in NOT_RUNNING_STATUSES


class NotAVideoError(ValueError):
    """A JSON body that is not a video object."""


class RelayError(NotAVideoError):
    """A relay's envelope saying the request failed, e.g. ``{"code": 404, "msg": "no such
    task", "data": null}``: ``code`` and ``message`` as the relay sent them."""

    def __init__(self, code: Any, message: str | None) -> None:
        self.code = code
        self.message = message or f"the relay answered code {code!r}"
        super().__init__(self.message)


class OtherTaskError(ValueError):
    """An answer about another task than the one polled."""

    def __init__(self, answered: str, polled: str) -> None:
        shown = answered if len(answered) <= _SHOWN_ID else answered[:_SHOWN_ID] + "…"
        super().__init__(f"the answer is about task {shown!r}, not {polled!r}")


@dataclass(frozen=True)
class Video:
    """The fields of a video object that tracker keeps in columns."""

    status: str
    progress: int | None = None
    error: Any = None
    model: str | None = None
    seconds: str | None = None
    size: str | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    video_url: str | None = None  # where some relays serve the finished file

    @property
    def phase(self) -> Phase:
        return Phase.of(self.status)


def parse_video(document: object, task_id: str | None = None) -> Video:
    """Read a decoded JSON body, OpenAI's video object or a relay's variant of it
    (docs/relays.md). Raise NotAVideoError if it has no status to go by (RelayError if a relay's
    envelope says the request failed) and, given the polled ``task_id``, OtherTaskError if the
    answer names another task."""
    if not isinstance(document, dict):
        raise NotAVideoError(f"expected a JSON object, got {type(document).__name__}")
    status = document.get("status")
    if status is None:
        document, status = _relay_video(document)
    if not isinstance(status, str) or not status.strip():
        raise NotAVideoError("the JSON object has no status")
    if task_id is not None and document.get("id") != task_id:
        _check_task(document, task_id)
    error = document.get("error")
    if error in (None, "", {}):
        # Relays' names for a failed task's reason as text, made OpenAI's error shape. Looked
        # up before the status is folded, which is needed only when one of them is there.
        reason = (
            document.get("fail_reason")
            or document.get("failReason")
            or document.get("failMsg")
            or document.get("message")
        )
        failed = isinstance(reason, str) and reason.strip() and Phase.of(status) is _FAILED
        error = {"code": None, "message": reason} if failed else None
    video_url = document.get("video_url") or document.get("result_url")
    return Video(
        status=status,
        progress=parse_progress(document.get("progress")),
        error=error,
        model=_text(document.get("model")),
        seconds=_text(document.get("seconds")),
        size=_text(document.get("size")),
        created_at=parse_timestamp(document.get("created_at")),
        completed_at=parse_timestamp(document.get("completed_at")),
        expires_at=parse_timestamp(document.get("expires_at")),
        video_url=video_url if isinstance(video_url, str) else None,
    )


def relay_error(document: object) -> RelayError | None:
    """The failure a relay's envelope reports (a ``code`` other than 0, 200 or "success", with
    its ``msg`` or ``message``), or None."""
    if not isinstance(document, dict) or document.get("code") is None:
        return None
    code = document["code"]
    if str(code).strip().casefold() in _ENVELOPE_OK:
        return None
    message = document.get("msg") or document.get("message")
    return RelayError(code, message if isinstance(message, str) else None)


def _relay_video(document: dict[str, Any]) -> tuple[dict[str, Any], object]:
    """The object holding the video and its status, for answers without a ``status`` key:
    ``state`` for ``status``, or an envelope's ``data``."""
    state = document.get("state")
    if state is not None:
        return document, state
    data = document.get("data")
    if isinstance(data, dict):
        status = data.get("status")
        if status is None:
            status = data.get("state")
        if isinstance(status, str) and status.strip():
            return data, status
    failure = relay_error(document)
    if failure is not None:
        raise failure
    return document, None


def _check_task(document: dict[str, Any], task_id: str) -> None:
    """Raise OtherTaskError unless one of the IDs the answer names (strings only: some relays'
    ``id`` is a row number) is the polled task's; an answer naming none is taken as it is."""
    answered = [value for key in _ID_KEYS if isinstance(value := document.get(key), str) and value]
    if answered and not any(same_task(value, task_id) for value in answered):
        raise OtherTaskError(answered[0], task_id)


def parse_progress(value: object) -> int | None:
    """0..100 from an integer, a float or a string like ``"45%"``; None when unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str) and (match := _PERCENT.fullmatch(value)):
        number = float(match[1])
    else:
        return None
    if not math.isfinite(number):
        return None
    return max(0, min(100, int(number)))


def parse_timestamp(value: object) -> datetime | None:
    """A UTC datetime from Unix seconds or milliseconds (number or numeric string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        return None
    seconds = value / 1000 if value >= _MILLISECONDS_THRESHOLD else value
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _text(value: object) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)
