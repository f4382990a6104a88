"""Turning rows into JSON and text (keys are column names, timestamps ISO 8601)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tracker.cli import render


def test_repeated_column_names_keep_every_value() -> None:
    """`SELECT 1 AS a, 2 AS a` shows both values instead of one hiding the other."""
    assert render.query_rows(["a", "a", "b"], [(1, 2, 3)]) == [{"a": 1, "a_2": 2, "b": 3}]


def test_sqlite_timestamp_text_becomes_iso_8601_utc() -> None:
    """Stored timestamps read through raw SQL come out like every other JSON timestamp."""
    [row] = render.query_rows(["t", "s"], [("2026-11-28 13:51:24.123456", "not a time")])
    document = json.loads(render.to_json([row]))
    assert document == [{"t": "2026-11-28T13:51:24.123456+00:00", "s": "not a time"}]


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
        {"avg": 2.5, "count": 3, "wait": 60.0, "inf": "inf", "at": "2026-01-01T00:00:00+00:00"}
    ]
