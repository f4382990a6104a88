"""``GET /v1/report``: the report of ``tracker report`` (docs/insights.md), from the same store
read and the same reading of its parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tracker.core.report import KEY_NAMES, KEYS_PATTERN
from tracker.errors import ReportQueryError
from tracker.settings.values import report_query
from tracker.web import problems
from tracker.web.auth import caller
from tracker.web.problems import ApiError, FieldError
from tracker.web.schemas import ReportOut, ReportRowOut
from tracker.web.service import Service, service_of

router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(caller)],
    responses=problems.responses(401, 503),
)
ServiceOf = Annotated[Service, Depends(service_of)]
WHEN = "An age (36h, 7d) or an ISO 8601 date or date and time (UTC unless it names a zone)"


@router.get(
    "/report",
    response_model=ReportOut,
    response_model_exclude_unset=True,
    summary="The tasks registered in a window, grouped, counted and timed",
    responses=problems.responses(422),
)
def report(
    service: ServiceOf,
    since: Annotated[str | None, Query(description=f"{WHEN}; 7d unless given")] = None,
    until: Annotated[str | None, Query(description=f"{WHEN}; now unless given")] = None,
    by: Annotated[
        str | None,
        Query(
            description=f"Comma-separated keys among {KEY_NAMES}; none: one row of all",
            # For the document: the parameter is read by report_query, whose message names the
            # key that is not one.
            json_schema_extra={"pattern": KEYS_PATTERN},
        ),
    ] = None,
) -> ReportOut:
    """One row per group of the tasks registered from ``since`` until ``until``, ordered by
    its keys: the rows ``tracker report --json`` prints, each key asked for in ``by`` named
    as itself. No task in the window: no row."""
    try:
        query = report_query(service.clock.now(), since, until, by)
    except ReportQueryError as exc:
        raise ApiError(
            "No report was made: fix the parameter named.",
            errors=[FieldError(detail=exc.reason, parameter=exc.field)],
            status=422,
        ) from None
    rows = service.database.reports.report(query)
    return ReportOut(
        since=query.since,
        until=query.until,
        rows=[ReportRowOut.model_validate(row.as_dict()) for row in rows],
    )
