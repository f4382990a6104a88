"""Request bodies refused with 413 before they are read whole: by their Content-Length when
they give one, else as soon as what arrived passes the limit (a chunked body)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracker.web.problems import PROBLEM_MEDIA_TYPE

DEFAULT_BODY_BYTES = 64 * 1024


class TooLarge(HTTPException):
    """Raised by the body's ``receive`` once what arrived passes the limit. An HTTPException,
    because that is what FastAPI passes on from reading a body (any other error becomes its
    400 "There was an error parsing the body"): the app answers it as a problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=_detail(limit), headers={"Connection": "close"})


def _detail(limit: int) -> str:
    return f"The request body is over {limit:,} bytes."


class BodyLimit:
    """ASGI middleware: ``limit(method, path)`` is the most a request may send."""

    def __init__(self, app: ASGIApp, limit: Callable[[str, str], int]) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._limit(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge(limit)
            return message

        await self._app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": "Content Too Large",
        "status": 413,
        "detail": _detail(limit),
        "instance": scope.get("path", ""),
    }
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(raw)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
