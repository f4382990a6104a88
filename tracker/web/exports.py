"""``GET /v1/export``: the rows `tracker export` writes (docs/http-api.md, Export), from the same
store read and the same writer, streamed as they are read; the tasks chosen by the filters of
``GET /v1/tasks``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import chain
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from tracker.core.exports import MEDIA_TYPES, ExportFormat, ExportTable, export_lines
from tracker.settings.values import parse_moment
from tracker.web import problems
from tracker.web.auth import caller
from tracker.web.problems import ApiError, FieldError
from tracker.web.queries import TaskFilterOf
from tracker.web.service import Service, service_of

router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(caller)],
    responses=problems.responses(401, 503),
)
ServiceOf = Annotated[Service, Depends(service_of)]
# What is sent at a time: rows gathered into pieces of about this many bytes, since each piece
# is a hop between the thread reading and the event loop.
PIECE_BYTES = 64 * 1024
ROWS = {"type": "string", "description": "The rows, as `tracker export` writes them"}


@router.get(
    "/export",
    summary="Tasks or snapshots as CSV or JSON lines, streamed",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Every row, written as it is read; the Content-Disposition names "
            "a file for it",
            "content": {media: {"schema": ROWS} for media in MEDIA_TYPES.values()},
            "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
        },
        **problems.responses(422),
    },
)
def export(
    service: ServiceOf,
    which: TaskFilterOf,
    table: Annotated[ExportTable, Query(description="tasks, or their snapshots")] = "snapshots",
    export_format: Annotated[
        ExportFormat, Query(alias="format", description="csv or jsonl")
    ] = "jsonl",
    since: Annotated[
        str | None,
        Query(
            description="Only rows since then: snapshots polled, tasks registered or polled; "
            "an age (36h, 7d) or an ISO 8601 date or date and time (UTC unless it names a zone)"
        ),
    ] = None,
) -> StreamingResponse:
    """What ``tracker export --table TABLE --format FORMAT --since SINCE`` writes: tasks in
    registration order, snapshots in the order they were written; only those of the tasks the
    filters select (the parameters of ``GET /v1/tasks``). Memory stays flat at any size."""
    now = service.clock.now()
    moment = _since(since, now) if since is not None else None
    rows = service.database.reads.export_rows(table, moment, which)
    pieces = _pieces(export_lines(rows, export_format))
    # The first piece is read here, so that a database out of reach answers as a problem, not
    # as a stream cut short.
    first = next(pieces, b"")
    filename = f"tracker-{table}-{now:%Y%m%dT%H%M%SZ}.{export_format}"
    return StreamingResponse(
        chain([first], pieces),
        media_type=MEDIA_TYPES[export_format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _since(raw: str, now: datetime) -> datetime:
    try:
        return parse_moment(raw, now)
    except (ValueError, OverflowError) as exc:
        detail = str(exc) if isinstance(exc, ValueError) else "too far back"
        raise ApiError(
            "Nothing was exported: fix the parameter named.",
            errors=[FieldError(detail=detail, parameter="since")],
            status=422,
        ) from None


def _pieces(lines: Iterator[str]) -> Iterator[bytes]:
    gathered: list[str] = []
    size = 0
    for line in lines:
        gathered.append(line)
        size += len(line)
        if size >= PIECE_BYTES:
            yield "".join(gathered).encode()
            gathered, size = [], 0
    if gathered:
        yield "".join(gathered).encode()
