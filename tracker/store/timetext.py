"""Times as tracker stores them (``schema.UTCDateTime``): aware ones only, in UTC, and on SQLite
as text made fast, since the batch writer formats several a poll (docs/performance.md)."""

from __future__ import annotations

from datetime import UTC, datetime


def in_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive one is refused with ValueError, since its zone is a guess."""
    if value.tzinfo is UTC:
        return value
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: tracker stores UTC only")
    return value.astimezone(UTC)


def sqlite_text(value: datetime | None) -> str | None:
    """The text SQLite stores for ``value``: what SQLAlchemy writes for the naive UTC value
    ``UTCDateTime.process_bind_param`` gives, so that values written by the batch writer
    compare correctly with the rest."""
    if value is None:
        return None
    value = in_utc(value)
    # Put together from parts instead of by isoformat, which took three times as long and was
    # a fifth of the writing thread's time: a poll writes two new times at least (its own and
    # its next), so a table of the texts already made missed as often as it found.
    day = _DAYS.get(ordinal := value.toordinal())
    if day is None:
        if len(_DAYS) >= _DAYS_KEPT:
            _DAYS.clear()
        day = _DAYS[ordinal] = value.date().isoformat()
    two = _TWO_DIGITS
    return (
        f"{day} {two[value.hour]}:{two[value.minute]}:{two[value.second]}.{value.microsecond:06d}"
    )


_DAYS: dict[int, str] = {}
_DAYS_KEPT = 4096
_TWO_DIGITS = tuple(f"{number:02d}" for number in range(60))
