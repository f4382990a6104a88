"""The exceptions of ``tracker.client`` (the tree is in its docstring), and the one rule that turns
an answer the server refused into one of them. No message carries the server token: they are
made from the method, the path, the status and the server's own problem document."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast, get_args

import httpx

from tracker.errors import Refusal, TrackerError


class ClientError(TrackerError):
    """Base of every exception ``tracker.client`` raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One field the server named in a refusal: a JSON pointer into the request's body
    (``/ids/3``) or a parameter's name (``cursor``, ``Last-Event-ID``)."""

    detail: str
    pointer: str | None = None
    parameter: str | None = None

    def __str__(self) -> str:
        where = self.pointer if self.pointer is not None else self.parameter
        return f"{where}: {self.detail}" if where else self.detail


class ProblemError(ClientError):
    """The server answered with an error: an RFC 9457 problem (``application/problem+json``),
    or a bare status from something in front of it (a proxy's ``502``)."""

    def __init__(
        self,
        request: str,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        errors: tuple[FieldError, ...] = (),
        type: str = "about:blank",
        instance: str | None = None,
    ) -> None:
        self.request = request  # "GET /v1/tasks/video_1": what was asked
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors
        self.type = type
        self.instance = instance
        message = f"{request}: {status} {title}"
        if detail:
            message += f": {detail}"
        if errors:
            message += " (" + "; ".join(str(error) for error in errors) + ")"
        super().__init__(message)


class InvalidRequest(ProblemError):
    """``400``, ``413`` or ``422``: the request was refused as it was, and nothing was written;
    ``errors`` names each offending field."""


class Unauthorized(ProblemError):
    """``401``: no server token was sent, or not one the server knows."""


class NotFound(ProblemError):
    """``404``: no task of that ID is registered (or the path is not the API's: check the base
    URL)."""


@dataclass(frozen=True)
class RefusedTask:
    """A task a ``Conflict`` names: why the action left it as it was (``finished``: polling
    it now; ``completed`` or ``unfinished``: reopening it), and how it finished, if it has."""

    task_id: str
    refusal: Refusal
    finish_reason: str | None = None


class Conflict(ProblemError):
    """``409``: the task's state does not take the action (polling a finished task now,
    reopening a completed or an unfinished one); ``refused`` says which and why, ``detail`` in
    words, and nothing changed."""

    refused: tuple[RefusedTask, ...] = ()


class ServerError(ProblemError):
    """A ``5xx``: the server or its database failed (``503``: the database is unavailable);
    the same request may work shortly."""


class ConnectionFailed(ClientError):
    """No answer: the server could not be reached, the connection broke, or an answer did not
    come in time. The ``httpx`` exception is its ``__cause__``."""


class UnexpectedResponse(ClientError):
    """An answer the API does not give: a success that is not the JSON expected, or an event
    stream that is not one (something else answers at the base URL)."""


class WaitTimeout(ClientError, TimeoutError):
    """``wait`` ran out of time before the task finished."""

    def __init__(self, task_id: str, timeout: float) -> None:
        self.task_id = task_id
        self.timeout = timeout
        super().__init__(f"task {task_id!r} did not finish within {timeout:g} s")


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
}


def problem_of(request: str, status: int, content: bytes, *, index_base: int = 0) -> ProblemError:
    """The exception for an error answer: its class from the status, its fields from the
    problem document if the body is one. ``index_base`` is added to the index that opens a
    pointer into a list (``/ids/3``), for a request that sent part of the caller's list."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ProblemError)
    body = _json_object(content)
    title = _text(body.get("title")) or _phrase(status)
    errors = tuple(
        _field_error(item, index_base)
        for item in (body.get("errors") or [])
        if isinstance(item, dict)
    )
    error = cls(
        request,
        status,
        title,
        _text(body.get("detail")),
        errors=errors,
        type=_text(body.get("type")) or "about:blank",
        instance=_text(body.get("instance")),
    )
    if isinstance(error, Conflict):
        error.refused = tuple(
            refused for item in body.get("refused") or [] if (refused := _refused(item))
        )
    return error


def connection_failed(request: str, origin: str, exc: httpx.HTTPError) -> ConnectionFailed:
    """What to raise when ``exc`` kept ``request`` to ``origin`` from being answered."""
    reason = str(exc) or type(exc).__name__
    return ConnectionFailed(f"{request} to {origin}: {reason}")


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        value = json.loads(content)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field_error(item: dict[str, Any], index_base: int) -> FieldError:
    pointer = _text(item.get("pointer"))
    if pointer is not None and index_base:
        pointer = _shifted(pointer, index_base)
    return FieldError(
        detail=_text(item.get("detail")) or "invalid",
        pointer=pointer,
        parameter=_text(item.get("parameter")),
    )


def _refused(item: object) -> RefusedTask | None:
    """One entry of a 409's ``refused``, or None for one this client cannot read (a refusal
    a newer server added)."""
    if not isinstance(item, dict):
        return None
    task_id, refusal = _text(item.get("task_id")), item.get("refusal")
    if task_id is None or refusal not in get_args(Refusal):
        return None
    return RefusedTask(task_id, cast(Refusal, refusal), _text(item.get("finish_reason")))


def _shifted(pointer: str, by: int) -> str:
    """``/ids/3/x`` as ``/ids/{3 + by}/x``: the place in the caller's whole list."""
    parts = pointer.split("/")
    if len(parts) > 2 and parts[2].isdigit():
        parts[2] = str(int(parts[2]) + by)
    return "/".join(parts)
