"""Standard Webhooks signatures: what verifies and what does not; which events are acted on."""

from __future__ import annotations

import json

import pytest

from tracker.core.secrets import secret_key
from tracker.errors import ConfigError
from tracker.http.signing import InvalidSignature, signed_headers, verify
from tracker.settings import load_settings
from tracker.web.webhooks import NotAVideoEvent, video_event

KEY = secret_key("whsec_YS1sb25nLWVub3VnaC13ZWJob29rLXNlY3JldA==")
BODY = b'{"type": "video.completed", "data": {"id": "video_1"}}'


def test_a_signed_event_verifies_and_any_change_breaks_it() -> None:
    """The body, the id, the timestamp and the key are all covered by the signature."""
    headers = signed_headers(KEY, "evt_1", 1_800_000_000, BODY)
    verify(KEY, headers, BODY, 1_800_000_010)
    with pytest.raises(InvalidSignature):
        verify(KEY, headers, BODY + b" ", 1_800_000_010)
    with pytest.raises(InvalidSignature):
        verify(KEY, {**headers, "webhook-id": "evt_2"}, BODY, 1_800_000_010)
    with pytest.raises(InvalidSignature):
        verify(secret_key("another-secret-of-enough-bytes"), headers, BODY, 1_800_000_010)


def test_stale_and_future_timestamps_are_refused() -> None:
    """More than five minutes either way: refused, even with a correct signature."""
    headers = signed_headers(KEY, "evt_1", 1_800_000_000, BODY)
    with pytest.raises(InvalidSignature, match="five minutes"):
        verify(KEY, headers, BODY, 1_800_000_000 + 301)
    with pytest.raises(InvalidSignature, match="five minutes"):
        verify(KEY, headers, BODY, 1_800_000_000 - 301)


@pytest.mark.parametrize(
    "bad",
    [
        {"webhook-timestamp": "²"},
        {"webhook-timestamp": "9" * 5000},
        {"webhook-signature": "v1,ü"},
        {"webhook-id": ""},
        {"webhook-signature": ""},
    ],
)
def test_odd_headers_are_refused_not_crashed_on(bad: dict[str, str]) -> None:
    """Non-ASCII digits, absurd numbers, non-ASCII signatures: InvalidSignature, no 500."""
    headers = {**signed_headers(KEY, "evt_1", 1_800_000_000, BODY), **bad}
    with pytest.raises(InvalidSignature):
        verify(KEY, headers, BODY, 1_800_000_000)


@pytest.mark.parametrize("secret", ["   ", "whsec_", "whsec_c2hvcnQ=", "short"])
def test_empty_or_short_secrets_are_refused_at_start(secret: str) -> None:
    """A key of fewer than 16 bytes would let anyone sign: refused as bad input."""
    environ = {"TRACKER_WEBHOOK_SECRET": secret, "TRACKER_NOTIFY_SECRET": secret}
    with pytest.raises(ConfigError, match=r"TRACKER_.*_SECRET"):
        load_settings(["webhook_secret", "notify_secret"], environ=environ)


@pytest.mark.parametrize("kind", ["video.completed", "video.failed"])
def test_video_events_name_the_task_to_poll(kind: str) -> None:
    """The two video events, with data.id, ask for that task to be polled."""
    body = json.dumps({"type": kind, "data": {"id": "video_1", "object": "video"}}).encode()
    assert video_event(body) == "video_1"


@pytest.mark.parametrize(
    "body",
    [
        b'{"type": "response.completed", "data": {"id": "resp_1"}}',
        b'{"type": "video.created", "data": {"id": "video_1"}}',
        b'{"type": "video.completed", "data": {}}',
        b'{"type": "video.completed", "data": {"id": ""}}',
        b'{"type": "video.completed", "data": {"id": 7}}',
        b'{"type": ["video.completed"], "data": {"id": "video_1"}}',
        b'{"data": {"id": "video_1"}}',
        b'["video.completed"]',
        b"not json",
    ],
)
def test_anything_else_is_not_a_video_event(body: bytes) -> None:
    """Another event type, a missing or odd data.id, or no event at all: NotAVideoEvent (the
    receiver answers 400)."""
    with pytest.raises(NotAVideoEvent):
        video_event(body)
