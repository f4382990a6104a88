"""Values as JSON holds them, for every output that leaves the process (events, --json, the
HTTP API), timestamps in one format."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any


def timestamp_text(value: datetime) -> str:
    """A moment as every output of tracker writes it (the API's answers, events, --json,
    exports, notifications, JSON logs, the dashboard's machine-readable times; docs/tables.md):
    ISO 8601 in UTC, to the microsecond, with Z: ``2026-12-01T14:02:51.120000Z``. ``value``
    must be aware, as every timestamp tracker stores is."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: its time zone is unknown")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it: timestamps as timestamp_text writes them (a naive one,
    which is none of tracker's, such as a query's, as it is: ISO 8601 without a zone), numbers
    PostgreSQL returns as Decimal as numbers, intervals as seconds, anything else unknown as
    text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity
    if value is None or isinstance(value, str | int | float | bool | list | dict):
        return value
    if isinstance(value, datetime):
        return timestamp_text(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)
