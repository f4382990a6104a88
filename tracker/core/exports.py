"""What an export is (docs/cli.md, export; docs/http-api.md, Export): the tables it reads, its
formats, and each row as the line it writes, for `tracker export` and ``GET /v1/export``
alike."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, get_args

from tracker.core.encoding import jsonable

ExportTable = Literal["tasks", "snapshots"]
ExportFormat = Literal["csv", "jsonl"]
EXPORT_TABLES: tuple[ExportTable, ...] = get_args(ExportTable)
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)
MEDIA_TYPES: dict[ExportFormat, str] = {"csv": "text/csv", "jsonl": "application/x-ndjson"}

# Values JSON holds as they are go through the C encoder; jsonable sees only the rest.
_ROW_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=jsonable)


def json_line(row: Mapping[str, Any]) -> str:
    """One row as a JSON object on one line."""
    try:
        return _ROW_ENCODER.encode(row)
    except ValueError:  # NaN or an infinity, which jsonable writes as text
        document = {key: jsonable(value) for key, value in row.items()}
        return json.dumps(document, ensure_ascii=False, allow_nan=False)


def csv_cell(value: Any) -> Any:
    value = jsonable(value)
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value


def export_lines(rows: Iterable[Mapping[str, Any]], export_format: ExportFormat) -> Iterator[str]:
    """Each row as its line, as it is read: a JSON object, or a CSV record (the first one
    after the column names, in the same piece, so that there is one piece a row)."""
    if export_format == "jsonl":
        for row in rows:
            yield json_line(row) + "\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    named = False
    for row in rows:
        if not named:
            writer.writerow(row.keys())
            named = True
        writer.writerow(csv_cell(value) for value in row.values())
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
