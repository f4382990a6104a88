"""The receiver of the API's own webhooks (``tracker run --webhook-port``): signed
``video.completed`` and ``video.failed`` events make that task due at once. Polling stays the
source of truth: an event only decides *when* the task is polled, never *what* is stored."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tracker.http.server import Answer, Request, error_body, serve_connection
from tracker.http.signing import TOLERANCE_SECONDS, InvalidSignature, verify

logger = logging.getLogger(__name__)

# The receiver keeps at most this many connections; each request must arrive within
# REQUEST_SECONDS. Both are checked before any signature, so nobody unsigned holds much.
MAX_CONNECTIONS = 64
REQUEST_SECONDS = 10.0
MAX_BODY_BYTES = 64 * 1024
EVENT_TYPES = frozenset({"video.completed", "video.failed"})


class NotAVideoEvent(ValueError):
    """A signed event the receiver does not act on: answered 400 (docs/follow-ups.md)."""


@dataclass(frozen=True)
class VideoEvent:
    type: str  # one of EVENT_TYPES
    task_id: str


def video_event(body: bytes) -> VideoEvent:
    """What a signed event's body asks for: a task to poll now. Anything but a
    ``video.completed`` or ``video.failed`` event naming a task raises NotAVideoEvent."""
    try:
        event: Any = json.loads(body)
        kind, task_id = event["type"], event["data"]["id"]
    except (ValueError, KeyError, TypeError):
        raise NotAVideoEvent("not an event with a type and data.id") from None
    if not isinstance(kind, str) or not isinstance(task_id, str) or not task_id:
        raise NotAVideoEvent("not an event with a type and data.id")
    if kind not in EVENT_TYPES:
        raise NotAVideoEvent(f"{kind[:100]} is not one of {', '.join(sorted(EVENT_TYPES))}")
    return VideoEvent(kind, task_id)


class WebhookReceiver:
    """An HTTP server taking signed video events; ``on_event(task_id)`` makes the task due."""

    def __init__(
        self,
        key: bytes,
        on_event: Callable[[str], Awaitable[bool]],
        clock: Callable[[], float],
    ) -> None:
        self._key = key
        self._on_event = on_event
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._connections = 0
        # Events handled, by ID, kept past the tolerance: a sender's retry (or a captured
        # event replayed) is answered without acting twice.
        self._handled: dict[str, float] = {}
        self.accepted = 0
        self.refused = 0

    def _remember(self, event_id: str, now: float) -> None:
        """Note a handled event; forget those too old to pass the timestamp check again."""
        if len(self._handled) > 10_000:
            self._handled = {
                k: t for k, t in self._handled.items() if now - t <= 2 * TOLERANCE_SECONDS
            }
        self._handled[event_id] = now

    async def start(self, host: str, port: int) -> int:
        """Listen; return the port (useful with 0). OSError if the port cannot be had."""
        self._server = await asyncio.start_server(self._connection, host, port)
        bound: int = self._server.sockets[0].getsockname()[1]
        logger.info("receiving the API's webhooks on %s:%d", host, bound)
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._connections >= MAX_CONNECTIONS:
            writer.close()
            return
        self._connections += 1
        try:
            await serve_connection(
                reader,
                writer,
                self._handle,
                max_body=MAX_BODY_BYTES,
                request_timeout=REQUEST_SECONDS,
            )
        finally:
            self._connections -= 1

    async def _handle(self, request: Request) -> Answer:
        if request.method != "POST":
            return 405, {"Allow": "POST"}, error_body("POST events here.", "invalid_request")
        now = self._clock()
        try:
            verify(self._key, request.headers, request.body, now)
        except InvalidSignature as exc:
            self.refused += 1
            logger.warning("webhook refused: %s", exc)
            return 401, {}, error_body(f"Refused: {exc}.", "invalid_signature")
        event_id = request.headers["webhook-id"]
        if event_id in self._handled:
            # Senders retry until they see a 2xx: a retry is acknowledged, not acted on again.
            return 200, {}, json.dumps({"received": True, "duplicate": True}).encode()
        try:
            event = video_event(request.body)
        except NotAVideoEvent as exc:
            logger.info("webhook %s not acted on: %s", event_id, exc)
            return 400, {}, error_body(f"Not a video event: {exc}.", "invalid_request")
        try:
            polled = await self._on_event(event.task_id)
        except Exception as exc:
            # Not remembered: the sender's retry of this event gets another chance.
            logger.warning("webhook %s for %s not acted on: %s", event.type, event.task_id, exc)
            return 503, {}, error_body("Could not act on the event; retry.", "unavailable")
        self._remember(event_id, now)
        self.accepted += 1
        logger.info(
            "webhook %s for %s%s", event.type, event.task_id, ": polling it now" if polled else ""
        )
        return 200, {}, json.dumps({"received": True, "polling": polled}).encode()
