"""The receiver of the API's webhooks, its rules alone: signatures, event types, acting once
per event, and asking for a retry when it could not act."""

from __future__ import annotations

import asyncio
import json

from tracker.core.secrets import secret_key
from tracker.errors import DatabaseError
from tracker.http.signing import signed_headers
from tracker.web.webhooks import Inbox

KEY = secret_key("whsec_YS1sb25nLWVub3VnaC13ZWJob29rLXNlY3JldA==")
NOW = 1_800_000_000


def event(
    kind: str, task_id: str = "video_1", event_id: str = "evt_1", key: bytes = KEY
) -> tuple[dict[str, str], bytes]:
    body = json.dumps({"type": kind, "data": {"id": task_id}}).encode()
    return signed_headers(key, event_id, NOW, body), body


def test_an_event_not_acted_on_is_retried_and_then_acted_on_once() -> None:
    """503 while the database is away (not remembered); the sender's retry is acted on (200);
    a further retry is acknowledged without acting twice."""
    acted: list[str] = []
    up = [False]

    async def act(task_id: str, _provider: str) -> bool:
        if not up[0]:
            raise DatabaseError("database is locked")
        acted.append(task_id)
        return True

    inbox = Inbox({"default": KEY}, act, lambda: NOW)
    headers, body = event("video.completed")

    async def scenario() -> list[int]:
        first = await inbox.receive(headers, body)
        up[0] = True
        retried = await inbox.receive(headers, body)
        again = await inbox.receive(headers, body)
        assert again.body == {"received": True, "duplicate": True}
        return [first.status, retried.status, again.status]

    assert asyncio.run(scenario()) == [503, 200, 200]
    assert acted == ["video_1"]


def test_only_signed_video_events_are_taken() -> None:
    """A bad signature is 401; a signed event of another type (response.completed) is 400 and
    changes nothing; video.completed and video.failed are acted on."""
    acted: list[str] = []

    async def act(task_id: str, _provider: str) -> bool:
        acted.append(task_id)
        return True

    inbox = Inbox({"default": KEY}, act, lambda: NOW)
    headers, body = event("response.completed", event_id="evt_other")
    forged = {**headers, "webhook-signature": "v1,AAAA"}

    async def scenario() -> list[int]:
        answers = [
            await inbox.receive(forged, body),
            await inbox.receive(headers, body),
            await inbox.receive(*event("video.failed", "video_2", "evt_2")),
        ]
        return [answer.status for answer in answers]

    assert asyncio.run(scenario()) == [401, 400, 200]
    assert acted == ["video_2"]


def test_the_secret_that_signs_an_event_names_its_provider() -> None:
    """With a secret per provider, an event is acted on for the provider whose secret signed
    it; one no secret signs is refused."""
    relay = secret_key("relay-b-signs-its-webhooks-with-this-0123")
    acted: list[tuple[str, str]] = []

    async def act(task_id: str, provider: str) -> bool:
        acted.append((task_id, provider))
        return True

    inbox = Inbox({"default": KEY, "relay-b": relay}, act, lambda: NOW)
    stranger = secret_key("nobody-configured-this-secret-0123456789")

    async def scenario() -> list[int]:
        answers = [
            await inbox.receive(*event("video.completed", "video_a", "evt_a")),
            await inbox.receive(*event("video.completed", "task_b", "evt_b", relay)),
            await inbox.receive(*event("video.completed", "task_c", "evt_c", stranger)),
        ]
        return [answer.status for answer in answers]

    assert asyncio.run(scenario()) == [200, 200, 401]
    assert acted == [("video_a", "default"), ("task_b", "relay-b")]
