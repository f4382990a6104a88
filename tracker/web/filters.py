"""What the overview shows (docs/dashboard.md): its filters and order, read from the query
string, forgiving (what is not a choice is the default), and the links that keep them: to
another page, another order, the counts, and the export of the same tasks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlencode

from tracker.core.exports import ExportFormat, ExportTable
from tracker.core.models import NEWEST_FIRST, SortKey, TaskFilter, TaskOrder
from tracker.web.cursors import SORT_KEYS
from tracker.web.summary import STATES

PAGE_SIZES = (25, 50, 100)
# The way a column's first click sorts it: the newest, the latest polled, the furthest along
# first; statuses in the alphabet's order.
FIRST_DESCENDING = {
    SortKey.REGISTERED_AT: True,
    SortKey.LAST_POLLED_AT: True,
    SortKey.PROGRESS: True,
    SortKey.STATUS: False,
}
# Each field's name in the query string, where it is not the field's own.
_PARAMETERS = {"prefix": "q"}
# The fields that order and page the tasks; every other field chooses which tasks.
_VIEW = ("sort", "order", "limit")


@dataclass(frozen=True)
class Filters:
    """Which tasks the overview shows, in which order, how many a page."""

    state: str = "all"
    label: str = ""
    prefix: str = ""
    provider: str = ""
    error: str = ""  # text in the last error, any case
    sort: SortKey = SortKey.REGISTERED_AT
    order: str = "desc"
    limit: int = 50

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Filters:
        limit = query.get("limit", "")
        sort = query.get("sort", "")
        return cls(
            state=query.get("state", "all") if query.get("state") in STATES else "all",
            label=query.get("label", ""),
            prefix=query.get("q", "").strip(),
            provider=query.get("provider", ""),
            error=query.get("error", "").strip(),
            sort=SortKey(sort) if sort in SORT_KEYS else SortKey.REGISTERED_AT,
            order="asc" if query.get("order") == "asc" else "desc",
            limit=int(limit) if limit.isdigit() and int(limit) in PAGE_SIZES else 50,
        )

    @property
    def task_filter(self) -> TaskFilter:
        return TaskFilter(
            finished=False if self.state == "unfinished" else None,
            finish_reason=None if self.state in ("all", "unfinished") else self.state,
            label=self.label or None,
            prefix=self.prefix or None,
            provider=self.provider or None,
            error=self.error or None,
        )

    @property
    def task_order(self) -> TaskOrder:
        return TaskOrder(self.sort, self.order == "desc")

    @property
    def unfiltered(self) -> Filters:
        """Every task, in this order and page size."""
        return replace(Filters(), **{name: getattr(self, name) for name in _VIEW})

    @property
    def narrowed(self) -> bool:
        """Whether a filter leaves tasks out (the order and the page size leave none)."""
        return self != self.unfiltered

    @property
    def choosing(self) -> dict[str, str]:
        """Each filter that chooses tasks, by its name in the query string, with its value:
        what a form acting on the tasks the overview shows carries (macros.html)."""
        return {
            _PARAMETERS.get(field.name, field.name): getattr(self, field.name)
            for field in fields(self)
            if field.name not in _VIEW
        }

    @property
    def newest_first(self) -> bool:
        return self.task_order == NEWEST_FIRST

    def query(self, **changes: Any) -> str:
        """This view's query string, with ``changes``; defaults left out."""
        values: dict[str, Any] = {field.name: getattr(self, field.name) for field in fields(self)}
        values.update(changes)
        defaults = {field.name: field.default for field in fields(self)} | {"cursor": None}
        kept = {
            _PARAMETERS.get(key, key): str(value)
            for key, value in values.items()
            if value != defaults.get(key)
        }
        return "?" + urlencode(kept) if kept else ""

    def sort_query(self, key: str) -> str:
        """The first page sorted by ``key``: the other way if it is the order already."""
        sort = SortKey(key)
        if sort is self.sort:
            order = "asc" if self.order == "desc" else "desc"
        else:
            order = "desc" if FIRST_DESCENDING[sort] else "asc"
        return self.query(sort=sort, order=order)

    def aria_sort(self, key: str) -> str | None:
        if SortKey(key) is not self.sort:
            return None
        return "descending" if self.order == "desc" else "ascending"

    def state_query(self, state: str) -> str:
        """The tasks of one state alone, in this order."""
        return Filters(state=state, sort=self.sort, order=self.order).query()

    def export_url(self, table: ExportTable, export_format: ExportFormat) -> str:
        """``GET /v1/export`` of the tasks this view selects (all its pages), or of their
        snapshots, in the API's own parameters."""
        which = self.task_filter
        chosen = {
            "finished": "false" if which.finished is False else None,
            "finish_reason": which.finish_reason,
            "label": which.label,
            "prefix": which.prefix,
            "provider": which.provider,
            "error": which.error,
        }
        given = {name: value for name, value in chosen.items() if value is not None}
        return "/v1/export?" + urlencode({"table": table, "format": export_format, **given})
