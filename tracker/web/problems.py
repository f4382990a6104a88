"""Errors as RFC 9457 problem details (``application/problem+json``), naming the offending field
with a JSON pointer into the body (``/ids/3``) or the parameter's name; and how the OpenAPI
document declares them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from tracker.errors import Refusal, TaskStateError, TrackerError, UnknownTaskError, UsageError
from tracker.web.schemas import FORM_TAGS

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: The detail of a 422: what is wrong is in its ``errors``.
INVALID = "The request is not valid."


class FieldError(BaseModel):
    model_config = ConfigDict(extra="forbid")
    detail: str
    pointer: str | None = None  # a JSON pointer into the body, e.g. /ids/3
    parameter: str | None = None  # a query, path or header parameter's name


class RefusedTask(BaseModel):
    """A task a ``409`` refused to act on: why (``finished``: polling it now; ``completed``
    or ``unfinished``: reopening it), and how it finished, if it has."""

    model_config = ConfigDict(extra="forbid")
    task_id: str
    refusal: Refusal
    finish_reason: str | None = None


class Problem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None
    refused: list[RefusedTask] | None = None


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


class ApiError(Exception):
    """A refusal of the API's own, answered as a problem; ``detail`` never holds a secret."""

    status = 400
    title = "Bad Request"

    def __init__(
        self, detail: str, *, errors: list[FieldError] | None = None, status: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        if status is not None:
            self.status = status
            self.title = HTTPStatus(status).phrase


class NotFound(ApiError):
    status, title = 404, "Not Found"


def pointer(*path: object) -> str:
    """An RFC 6901 JSON pointer: ``pointer("ids", 3)`` is ``/ids/3``."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def problem(
    request: Request,
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    refused: list[RefusedTask] | None = None,
    headers: dict[str, str] | None = None,
) -> ProblemResponse:
    body = Problem(
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
        refused=refused,
    )
    return ProblemResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def install(app: FastAPI, routes: Callable[[], Iterable[BaseRoute]]) -> None:
    """Every error the app can answer becomes a problem: validation, routing, ours, crashes.
    ``routes`` are every route of the app, to name the methods a path allows."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> ProblemResponse:
        return problem(request, 422, detail=INVALID, errors=_field_errors(exc))

    # Starlette's HTTPException, FastAPI's parent: the router's 404 and 405 and FastAPI's 400
    # for a body that is not JSON are answered as problems too.
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> ProblemResponse:
        title = HTTPStatus(exc.status_code).phrase
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route's methods; the path may have more.
            headers["Allow"] = ", ".join(sorted(_allowed_methods(request, routes())))
        return problem(request, exc.status_code, detail=detail, headers=headers)

    @app.exception_handler(ApiError)
    async def refused(request: Request, exc: ApiError) -> ProblemResponse:
        return problem(request, exc.status, title=exc.title, detail=exc.detail, errors=exc.errors)

    @app.exception_handler(UnknownTaskError)
    async def unknown(request: Request, exc: UnknownTaskError) -> ProblemResponse:
        return problem(request, 404, detail=str(exc))

    @app.exception_handler(TaskStateError)
    async def conflict(request: Request, exc: TaskStateError) -> ProblemResponse:
        refused = [
            RefusedTask(task_id=task_id, refusal=refusal, finish_reason=finish_reason)
            for task_id, refusal, finish_reason in exc.refused
        ]
        return problem(request, 409, detail=str(exc), refused=refused)

    @app.exception_handler(UsageError)
    async def bad_input(request: Request, exc: UsageError) -> ProblemResponse:
        return problem(request, 400, detail=str(exc))

    @app.exception_handler(TrackerError)
    async def unavailable(request: Request, exc: TrackerError) -> ProblemResponse:
        # The database failing: the client may try again; the reason is in the daemon's log.
        return problem(request, 503, detail="The database is unavailable; try again shortly.")


def _operations(schema: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict):
                yield operation


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        location = tuple(error.get("loc", ()))
        where, rest = (location[0], location[1:]) if location else ("body", ())
        message = str(error.get("msg", "invalid"))
        if where == "body":
            if rest and rest[0] in FORM_TAGS:
                rest = rest[1:]  # the tag of the form the body was read as, not a field
            errors.append(FieldError(detail=message, pointer=pointer(*rest)))
        else:
            name = ".".join(map(str, rest)) or str(where)
            errors.append(FieldError(detail=message, parameter=name))
    return errors


def _allowed_methods(request: Request, routes: Iterable[BaseRoute]) -> set[str]:
    allowed: set[str] = set()
    for route in routes:
        methods = getattr(route, "methods", None)
        if methods and route.matches(request.scope)[0] in (Match.FULL, Match.PARTIAL):
            allowed |= methods
    return allowed


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting problems under their own media type."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def document(app: FastAPI) -> None:
    """Put the Problem schema into the OpenAPI document's components, where ``responses``
    points, and drop FastAPI's own validation-error schemas that nothing points to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        _, definitions = models_json_schema(
            [(Problem, "serialization")], ref_template="#/components/schemas/{model}"
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(definitions["$defs"])
        # FastAPI documents its own 422 body; ours is a problem, as every other error.
        for operation in _operations(schema):
            invalid = operation.get("responses", {}).get("422")
            if invalid is not None and "HTTPValidationError" in json.dumps(invalid):
                operation["responses"]["422"] = responses(422)[422]
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
