"""The video object the API answers and the rules for reading it, relays' variants included."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SUCCESS_STATUSES = frozenset({"completed", "succeeded", "success", "done"})
FAILURE_STATUSES = frozenset({"failed", "failure", "error", "cancelled", "canceled", "expired"})

# A completed video's files can be downloaded for about this long, when the API does not say.
ASSETS_LAST = timedelta(hours=1)
# Unix seconds pass this in the year 5138; anything bigger is a relay sending milliseconds.
_MILLISECONDS_THRESHOLD = 100_000_000_000
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%?\s*")


class Phase(enum.Enum):
    """Where a task stands, whatever spelling the API used for its status."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @classmethod
    def of(cls, status: str) -> Phase:
        folded = status.strip().casefold()
        if folded in SUCCESS_STATUSES:
            return cls.SUCCEEDED
        if folded in FAILURE_STATUSES:
            return cls.FAILED
        return cls.RUNNING


class NotAVideoError(ValueError):
    """A JSON body that is not a video object."""


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

    @property
    def phase(self) -> Phase:
        return Phase.of(self.status)


def parse_video(document: object) -> Video:
    """Read a decoded JSON body; raise NotAVideoError if it has no status to go by."""
    if not isinstance(document, dict):
        raise NotAVideoError(f"expected a JSON object, got {type(document).__name__}")
    status = document.get("status")
    if not isinstance(status, str) or not status.strip():
        raise NotAVideoError("the JSON object has no status")
    error = document.get("error")
    return Video(
        status=status,
        progress=parse_progress(document.get("progress")),
        error=error if error not in (None, "", {}) else None,
        model=_text(document.get("model")),
        seconds=_text(document.get("seconds")),
        size=_text(document.get("size")),
        created_at=parse_timestamp(document.get("created_at")),
        completed_at=parse_timestamp(document.get("completed_at")),
        expires_at=parse_timestamp(document.get("expires_at")),
    )


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
