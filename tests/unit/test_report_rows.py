"""The report's rows in their two forms: the dataclass the command and the pages use
(tracker/core/report.py) and the model the API documents (tracker/web/schemas.py), kept apart
for the OpenAPI document's descriptions, must name the same figures, in the same order, of the
same types; and groups of finer keys add up every count."""

from __future__ import annotations

from dataclasses import replace
from typing import get_type_hints

from tracker.core.report import COUNTS, FIGURES, Group, GroupKey, ReportRow, rollup
from tracker.web.schemas import ReportRowOut


def test_the_apis_row_has_every_key_then_every_figure_of_a_report_row() -> None:
    fields = ReportRowOut.model_fields
    assert list(fields) == [*(key.value for key in GroupKey), *FIGURES]
    types = get_type_hints(ReportRow)
    assert {name: fields[name].annotation for name in FIGURES} == {
        name: types[name] for name in FIGURES
    }
    assert all(fields[key.value].annotation == str | None for key in GroupKey)


def counted(first: int, step: int) -> dict[str, int]:
    """A different number for each count: ``first``, then ``step`` more each."""
    return {name: first + step * n for n, name in enumerate(COUNTS)}


def test_groups_add_up_every_count_and_join_their_durations() -> None:
    a1 = Group({"model": "a", "day": "1"}, **counted(1, 1), polls=1, took=[1], queued=[5])
    b1 = Group({"model": "b", "day": "1"}, **counted(2, 1), polls=2, took=[2], queued=[])
    a2 = Group({"model": "a", "day": "2"}, **counted(10, 1), polls=10, took=[10], queued=[])
    assert rollup([a1, b1, a2], [GroupKey.MODEL.value]) == [
        Group({"model": "a"}, **counted(11, 2), polls=11, took=[1, 10], queued=[5]),
        replace(b1, keys={"model": "b"}),
    ]
    assert a1.keys == {"model": "a", "day": "1"} and a1.took == [1]  # left as they were
