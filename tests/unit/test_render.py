"""Turning rows into JSON and text (keys are column names, timestamps ISO 8601)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from tracker.cli import render
from tracker.core.encoding import jsonable, timestamp_text


def test_repeated_column_names_keep_every_value() -> None:
    """`SELECT 1 AS a, 2 AS a` shows both values instead of one hiding the other."""
    assert render.query_rows(["a", "a", "b"], [(1, 2, 3)]) == [{"a": 1, "a_2": 2, "b": 3}]


def test_sqlite_timestamp_text_becomes_iso_8601_utc() -> None:
    """Stored timestamps read through raw SQL come out like every other JSON timestamp."""
    [row] = render.query_rows(["t", "s"], [("2026-11-28 13:51:24.123456", "not a time")])
    document = json.loads(render.to_json([row]))
    assert document == [{"t": "2026-11-28T13:51:24.123456Z", "s": "not a time"}]


def test_values_json_cannot_hold_become_json_it_can() -> None:
    """Decimal, intervals, non-finite floats and aware datetimes all produce valid JSON."""
    text = render.to_json(
        [
            {
                "avg": Decimal("2.5"),
                "count": Decimal("3"),
                "wait": timedelta(minutes=1),
                "inf": float("inf"),
                "at": datetime(2026, 1, 1, tzinfo=UTC),
            }
        ]
    )
    assert json.loads(text) == [
        {"avg": 2.5, "count": 3, "wait": 60.0, "inf": "inf", "at": "2026-01-01T00:00:00.000000Z"}
    ]


def test_a_timestamp_is_utc_to_the_microsecond_with_z() -> None:
    """The one format of every output, whatever the zone and however many microseconds; a
    naive value (none of tracker's: a query's) is left without a zone rather than called UTC."""
    paris = timezone(timedelta(hours=1))
    assert timestamp_text(datetime(2026, 12, 1, 15, 2, 51, 120000, paris)) == (
        "2026-12-01T14:02:51.120000Z"
    )
    assert jsonable(datetime(2026, 12, 1, tzinfo=UTC)) == "2026-12-01T00:00:00.000000Z"
    assert jsonable(datetime(2026, 12, 1, 9, 30)) == "2026-12-01T09:30:00"
    with pytest.raises(ValueError, match="naive"):
        timestamp_text(datetime(2026, 12, 1))
