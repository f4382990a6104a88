"""Turning rows into text: aligned tables, JSON and CSV, progress bars."""

from __future__ import annotations

import csv
import io
import json
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TextIO

from tracker.core.encoding import jsonable
from tracker.core.exports import csv_cell, json_line

# How SQLAlchemy writes tracker's UTC timestamps into SQLite.
_STORED_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?")


def to_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """A JSON array of objects, one per row, keyed by column name."""
    return json.dumps(
        [{key: jsonable(value) for key, value in row.items()} for row in rows],
        ensure_ascii=False,
        indent=2,
        allow_nan=False,
    )


def write_json(rows: Iterable[Mapping[str, Any]], out: TextIO, lines: bool = False) -> int:
    """Rows as they are read: a JSON array with an object per line (JSON lines, with
    ``lines``). Nothing is written before the first row is read, so an error reading it
    leaves no half of an array behind. Returns the number of rows."""
    count = 0
    for row in rows:
        if not lines:
            out.write(",\n" if count else "[\n")
        out.write(json_line(row))
        if lines:
            out.write("\n")
        count += 1
    if not lines:
        out.write("\n]\n" if count else "[]\n")
    return count


def record_row(record: Any) -> dict[str, Any]:
    """A record (Task, Snapshot…) as a row keyed by its field names, its values as they are
    (``dataclasses.asdict`` would copy every value, at a cost a long list feels)."""
    kind = type(record)
    known = _FIELDS.get(kind)
    if known is None:
        names = tuple(field.name for field in fields(record))
        known = _FIELDS[kind] = (names, operator.attrgetter(*names))
    names, values = known
    return dict(zip(names, values(record), strict=True))


_FIELDS: dict[type, tuple[tuple[str, ...], Callable[[Any], Any]]] = {}


def query_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Result rows as objects. A repeated column name gets a suffix (``a``, ``a_2``) instead of
    hiding a value; SQLite's timestamp text becomes ISO 8601 UTC, as every timestamp in JSON."""
    keys: list[str] = []
    for column in columns:
        key, number = column, 1
        while key in keys:
            number += 1
            key = f"{column}_{number}"
        keys.append(key)
    return [
        {key: _sqlite_timestamp(value) for key, value in zip(keys, row, strict=True)}
        for row in rows
    ]


def _sqlite_timestamp(value: Any) -> Any:
    if isinstance(value, str) and _STORED_TIMESTAMP.fullmatch(value):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue()


def cell(value: Any) -> str:
    """A value as a table cell: short timestamps, compact JSON, nothing for NULL."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(jsonable(value))


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 60) -> str:
    """An aligned plain-text table with a header line; long cells are cut at ``max_width``."""
    return "\n".join(table_lines(columns, rows, max_width, sample=len(rows)))


def table_lines(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    max_width: int = 60,
    sample: int = 1000,
) -> Iterator[str]:
    """The table a line at a time, as rows are read: the columns are as wide as the header
    and the first ``sample`` rows need; a wider cell further on widens its own line only."""
    remaining = iter(rows)
    first = [_cells(row, max_width) for row in islice(remaining, sample)]
    widths = [
        max([len(column)] + [len(row[index]) for row in first])
        for index, column in enumerate(columns)
    ]
    yield _aligned(columns, widths)
    for cells in first:
        yield _aligned(cells, widths)
    for row in remaining:
        yield _aligned(_cells(row, max_width), widths)


def _cells(row: Sequence[Any], max_width: int) -> list[str]:
    return [_clip(cell(value), max_width) for value in row]


def _aligned(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def progress_bar(progress: int | None, width: int = 20) -> str:
    if progress is None:
        return "[" + "·" * width + "]    "
    filled = round(width * progress / 100)
    return "[" + "█" * filled + "·" * (width - filled) + f"] {progress:3d}%"
