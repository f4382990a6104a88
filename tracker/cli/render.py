"""Turning rows into text: aligned tables, JSON and CSV, progress bars."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tracker.core.encoding import jsonable

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


def csv_cell(value: Any) -> Any:
    value = jsonable(value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


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
    cells = [[_clip(cell(value), max_width) for value in row] for row in rows]
    widths = [
        max([len(column)] + [len(row[index]) for row in cells])
        for index, column in enumerate(columns)
    ]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def progress_bar(progress: int | None, width: int = 20) -> str:
    if progress is None:
        return "[" + "·" * width + "]    "
    filled = round(width * progress / 100)
    return "[" + "█" * filled + "·" * (width - filled) + f"] {progress:3d}%"
