"""The overview's query string (tracker/web/filters.py): read forgivingly, written back without
the defaults, the order toggled by a header and kept by every link, and the export of the same
tasks in the API's own parameters; and the cursors that carry an order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from tracker.core.models import SortKey, Task, TaskFilter, TaskOrder
from tracker.web import cursors
from tracker.web.filters import Filters
from tracker.web.problems import ApiError

NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def test_what_is_not_a_choice_reads_as_the_default() -> None:
    odd = Filters.of({"state": "eaten", "sort": "size", "order": "up", "limit": "7"})
    assert odd == Filters()
    assert odd.query() == ""


def test_the_query_keeps_every_choice_and_leaves_the_defaults_out() -> None:
    chosen = Filters.of(
        {
            "state": "failed",
            "q": " video_ ",
            "provider": "relay",
            "error": "Timeout ",
            "sort": "progress",
            "order": "asc",
            "limit": "100",
        }
    )
    assert chosen.task_filter == TaskFilter(
        finish_reason="failed", prefix="video_", provider="relay", error="Timeout"
    )
    assert chosen.task_order == TaskOrder(SortKey.PROGRESS, descending=False)
    assert Filters.of({k: v[0] for k, v in parse_qs(chosen.query()[1:]).items()}) == chosen
    assert chosen.narrowed and not chosen.newest_first
    assert not Filters(sort=SortKey.STATUS, order="asc", limit=25).narrowed
    assert chosen.choosing == {
        "state": "failed",
        "label": "",
        "q": "video_",
        "provider": "relay",
        "error": "Timeout",
    }  # what the bulk form carries: the order and page size choose no task
    assert chosen.unfiltered == Filters(sort=SortKey.PROGRESS, order="asc", limit=100)
    assert chosen.unfiltered.query() == "?sort=progress&order=asc&limit=100"


def test_a_header_sorts_its_own_way_first_then_the_other() -> None:
    newest = Filters(label="ads")
    assert newest.sort_query("progress") == "?label=ads&sort=progress"  # desc: the default way
    assert newest.sort_query("status") == "?label=ads&sort=status&order=asc"
    assert newest.sort_query("registered_at") == "?label=ads&order=asc"
    by_status = Filters(sort=SortKey.STATUS, order="asc")
    assert by_status.sort_query("status") == "?sort=status"
    assert (by_status.aria_sort("status"), by_status.aria_sort("progress")) == ("ascending", None)
    assert by_status.state_query("failed") == "?state=failed&sort=status&order=asc"


def test_the_export_link_asks_the_api_for_the_same_tasks() -> None:
    link = Filters(state="unfinished", label="ads", error="429", sort=SortKey.PROGRESS)
    parts = urlsplit(link.export_url("snapshots", "csv"))
    assert parts.path == "/v1/export"
    assert parse_qs(parts.query) == {
        "table": ["snapshots"],
        "format": ["csv"],
        "finished": ["false"],
        "label": ["ads"],
        "error": ["429"],
    }
    completed = parse_qs(urlsplit(Filters(state="completed").export_url("tasks", "jsonl")).query)
    assert completed["finish_reason"] == ["completed"] and "finished" not in completed


def task(**values: object) -> Task:
    return replace(Task.registered("video_1", None, NOW), **values)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (SortKey.PROGRESS, 40),
        (SortKey.STATUS, "In_Progress"),
        (SortKey.LAST_POLLED_AT, NOW),
        (SortKey.PROGRESS, None),
    ],
)
def test_a_cursor_holds_its_order_and_its_value(key: SortKey, value: object) -> None:
    order = TaskOrder(key, descending=False)
    cursor = cursors.after_task(task(**{key.value: value}), order)
    place = cursors.position(cursor, order)
    assert (place.registered_at, place.task_id, place.value) == (NOW, "video_1", value)
    for other in (TaskOrder(key), TaskOrder()):
        with pytest.raises(ApiError) as refused:
            cursors.position(cursor, other)
        assert refused.value.errors and refused.value.errors[0].parameter == "cursor"


def test_a_newest_first_cursor_is_the_one_given_before_orders() -> None:
    cursor = cursors.after_task(task())
    assert cursors.position(cursor).task_id == "video_1"
    with pytest.raises(ApiError):
        cursors.position(cursor, TaskOrder(SortKey.STATUS))
