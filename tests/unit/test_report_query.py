"""What a report is asked, read from text as the command and the API read it: the window, the
keys, and why a value cannot be used; the nearest-rank rule of its percentiles."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tracker.core.report import (
    KEYS_PATTERN,
    GroupKey,
    ReportQuery,
    failure_rate,
    group_keys,
    nearest_rank,
)
from tracker.errors import ReportQueryError, UsageError
from tracker.settings.values import parse_moment, report_query

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_the_window_is_the_last_week_unless_given() -> None:
    query = report_query(NOW)
    assert query == ReportQuery(NOW - timedelta(days=7), None, ())
    query = report_query(NOW, since="36h", until="2026-12-06T11:00+01:00", by="model, day")
    assert query.since == NOW - timedelta(hours=36)
    assert query.until == datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    assert query.by == (GroupKey.MODEL, GroupKey.DAY)


@pytest.mark.parametrize(
    ("raw", "moment"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("90m", NOW - timedelta(minutes=90)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T12:30", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        ("2026-11-01T12:30:00Z", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
        ("2026-11-01 14:30+02:00", datetime(2026, 11, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_a_moment_is_an_age_or_a_date_in_utc_unless_it_names_a_zone(
    raw: str, moment: datetime
) -> None:
    assert parse_moment(raw, NOW) == moment
    assert parse_moment(raw, NOW).tzinfo is UTC


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("2026", "an age needs a unit"),
        ("15", "an age needs a unit"),
        ("yesterday", "not a date (2026-11-01) or an age (7d)"),
        ("2026-13-01", "not a date"),
        ("0d", "must be more than zero"),
        ("99999d", "must be at most 3650d"),
    ],
)
def test_a_moment_that_is_neither_says_what_one_looks_like(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_moment(raw, NOW)


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ({"by": "model,colour"}, "by", "unknown key 'colour': the keys are model, size, seconds"),
        ({"by": "Model"}, "by", "unknown key 'Model'"),
        ({"by": "model,,size"}, "by", "a key is missing between two commas"),
        ({"since": "soon"}, "since", "not a date"),
        ({"until": "2026"}, "until", "an age needs a unit"),
        ({"since": "2d", "until": "3d"}, "until", "is not after the start of the window"),
        ({"since": "2d", "until": "2d"}, "until", "is not after the start of the window"),
        ({"until": "2026-11-01"}, "until", "the default start, 7 days ago"),
    ],
)
def test_a_value_that_cannot_be_used_is_named_with_why(
    values: dict[str, str], field: str, words: str
) -> None:
    with pytest.raises(ReportQueryError) as raised:
        report_query(NOW, **values)
    assert raised.value.field == field
    assert words in raised.value.reason
    assert isinstance(raised.value, UsageError)


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "model", "model,size", " hour , label ", "day,day", "seconds,provider,label"],
)
def test_the_keys_the_reader_takes_match_the_documented_pattern(raw: str) -> None:
    assert re.fullmatch(KEYS_PATTERN, raw)
    group_keys(raw)


@pytest.mark.parametrize(
    "raw", [",", "model,", ",model", "MODEL", "model\t", "model;size", "colour", "model,,size"]
)
def test_what_the_pattern_refuses_the_reader_refuses(raw: str) -> None:
    assert not re.fullmatch(KEYS_PATTERN, raw)
    with pytest.raises(ReportQueryError):
        group_keys(raw)


def test_keys_come_in_the_order_given_and_once() -> None:
    assert group_keys("hour,model,hour") == (GroupKey.HOUR, GroupKey.MODEL)
    assert ReportQuery.of(NOW, by=["size", "model"]).by == (GroupKey.SIZE, GroupKey.MODEL)


@pytest.mark.parametrize(
    ("count", "percent", "rank"),
    [
        (1, 50, 1),
        (1, 99, 1),
        (2, 50, 1),
        (3, 50, 2),
        (3, 90, 3),
        (10, 90, 9),
        (10, 99, 10),
        (100, 99, 99),
        (100, 90, 90),
        (101, 99, 100),
        (1000, 50, 500),
    ],
)
def test_nearest_rank_is_the_smallest_with_that_share_at_or_below_it(
    count: int, percent: int, rank: int
) -> None:
    assert nearest_rank(count, percent) == rank


def test_the_failure_rate_is_of_the_tasks_that_ended_either_way() -> None:
    assert failure_rate(0, 0) is None
    assert failure_rate(3, 1) == 0.25
    assert failure_rate(0, 2) == 1.0
    assert failure_rate(2, 1) == 0.3333
