"""``GET /v1/export`` as a call, and its stream read (docs/http-api.md, Export): JSON lines
decoded into records a line at a time, or the body's bytes as they come."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TypeVar

import httpx

from tracker.client._calls import Call, Filter, opened
from tracker.client._errors import UnexpectedResponse
from tracker.client._models import read

ExportTable = Literal["tasks", "snapshots"]
ExportFormat = Literal["csv", "jsonl"]
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv", "jsonl": "application/x-ndjson"}

T = TypeVar("T")


@dataclass(frozen=True)
class Export:
    """What to export: a table's rows, in a format, of the tasks ``which`` selects, since a
    moment (an age such as ``7d``, an ISO 8601 date or time, or a ``datetime``; the server
    reads one without a zone as UTC)."""

    table: ExportTable
    format: ExportFormat
    which: Filter
    since: str | datetime | None

    @property
    def call(self) -> Call:
        since = self.since.isoformat() if isinstance(self.since, datetime) else self.since
        moment = (("since", since),) if since is not None else ()
        given = (("table", self.table), ("format", self.format), *self.which.params(), *moment)
        return Call("GET", "/v1/export", given)

    def opened(self, call: Call, response: httpx.Response) -> None:
        # Looked up once the answer is a success: a format that is none is the server's 422.
        opened(call, response, MEDIA_TYPES[self.format])


def row(cls: type[T], call: Call, line: str) -> T | None:
    """The record of one line of JSON lines; None for an empty line."""
    if not line:
        return None
    try:
        value = json.loads(line)
    except ValueError:
        raise UnexpectedResponse(f"{call}: a line that is not JSON: {line!r:.120}") from None
    return read(cls, value)
