"""The receiver of the API's own webhooks (docs/follow-ups.md, The API's webhooks): a signed
``video.completed`` or ``video.failed`` event makes that task due at once. Polling stays the
source of truth: an event only decides *when* the task is polled, never *what* is stored.

Senders retry an event until they get a 2xx: one acted on is answered 200 without acting
twice (by its ``webhook-id``); one that could not be acted on gets 503, so that it comes again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tracker.http.signing import TOLERANCE_SECONDS, InvalidSignature, verify

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
EVENT_TYPES = frozenset({"video.completed", "video.failed"})
_REMEMBERED = 10_000


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


class Inbox:
    """Checks and acts on events; ``act(task_id, provider)`` says whether the task will be
    polled now. ``keys`` are the secrets events are signed with, by provider: the one that
    verifies an event names whose API sent it."""

    def __init__(
        self,
        keys: Mapping[str, bytes],
        act: Callable[[str, str], Awaitable[bool]],
        clock: Callable[[], float],
    ) -> None:
        self._keys = dict(keys)
        self._act = act
        self._clock = clock
        # Events handled, by ID, kept past the tolerance: a sender's retry (or a captured
        # event replayed) is answered without acting twice.
        self._handled: dict[str, float] = {}

    async def receive(self, headers: Mapping[str, str], body: bytes) -> Answer:
        now = self._clock()
        try:
            provider = self._signer(dict(headers), body, now)
        except InvalidSignature as exc:
            logger.warning("webhook refused: %s", exc)
            return Answer(401, {"detail": f"Refused: {exc}."})
        event_id = headers["webhook-id"]
        if event_id in self._handled:
            return Answer(200, {"received": True, "duplicate": True})
        try:
            task_id = video_event(body)
        except NotAVideoEvent as exc:
            logger.info("webhook %s not acted on: %s", event_id, exc)
            return Answer(400, {"detail": f"Not a video event: {exc}."})
        try:
            polling = await self._act(task_id, provider)
        except Exception as exc:
            # Not remembered: the sender's retry of this event gets another chance.
            logger.warning("webhook for %s not acted on: %s", task_id, exc)
            return Answer(503, {"detail": "Could not act on the event; retry."})
        self._remember(event_id, now)
        logger.info("webhook for %s%s", task_id, ": polling it now" if polling else "")
        return Answer(200, {"received": True, "polling": polling})

    def _signer(self, headers: dict[str, str], body: bytes, now: float) -> str:
        """The provider whose secret signs the event; InvalidSignature if none does."""
        refusal = InvalidSignature("no secret configured")
        for provider, key in self._keys.items():
            try:
                verify(key, headers, body, now)
            except InvalidSignature as exc:
                refusal = exc
            else:
                return provider
        raise refusal

    def _remember(self, event_id: str, now: float) -> None:
        """Note a handled event; forget those too old to pass the timestamp check again."""
        if len(self._handled) > _REMEMBERED:
            self._handled = {
                key: seen
                for key, seen in self._handled.items()
                if now - seen <= 2 * TOLERANCE_SECONDS
            }
        self._handled[event_id] = now


class NotAVideoEvent(ValueError):
    """A signed event the receiver does not act on: answered 400 (docs/follow-ups.md)."""


def video_event(body: bytes) -> str:
    """The task a ``video.completed`` or ``video.failed`` event is about; anything else raises
    NotAVideoEvent saying what it is."""
    try:
        event: Any = json.loads(body)
        kind, task_id = event["type"], event["data"]["id"]
    except (ValueError, KeyError, TypeError):
        raise NotAVideoEvent("not an event with a type and data.id") from None
    if not isinstance(kind, str) or not isinstance(task_id, str) or not task_id:
        raise NotAVideoEvent("not an event with a type and data.id")
    if kind not in EVENT_TYPES:
        raise NotAVideoEvent(f"{kind[:100]} is not one of {', '.join(sorted(EVENT_TYPES))}")
    return task_id
