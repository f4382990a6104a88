"""tracker.client's reading of the event stream (no I/O): the line parser as EventSource reads,
the server's own encoding read back, and what a follower and a waiter do with each line."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest

from tracker.client import (
    ConnectionFailed,
    FinishedEvent,
    FinishReason,
    NotFound,
    ResetEvent,
    ServerError,
    SnapshotEvent,
    Unauthorized,
    UnexpectedResponse,
)
from tracker.client._feed import (
    CONNECTED,
    DEFAULT_RETRY_MILLISECONDS,
    HEARTBEAT,
    Subscription,
    Waiting,
)
from tracker.client._sse import Comment, Decoder, Message
from tracker.core.feed import FeedItem, FeedPosition
from tracker.web import events as server

AT = datetime(2026, 12, 1, 14, 2, 51, 120000, tzinfo=UTC)


def decode(text: str, decoder: Decoder | None = None) -> list[Message | Comment]:
    decoder = decoder or Decoder()
    read = [decoder.line(line) for line in text.splitlines()]
    return [item for item in read if item is not None]


def test_events_are_dispatched_at_a_blank_line_with_their_data_lines_joined() -> None:
    text = 'event: snapshot\ndata: {"a":\ndata:1}\n\ndata:  two spaces\n\n'
    assert decode(text) == [
        Message("snapshot", '{"a":\n1}', None),
        Message("message", " two spaces", None),
    ]


def test_an_event_without_an_id_keeps_the_last_one_as_eventsource_does() -> None:
    """The snapshot that finishes a task has no `id:`; the `finished` after it has one."""
    text = "id: 1-5\nevent: snapshot\ndata: {}\n\nevent: snapshot\ndata: {}\n\nid: 2-6\ndata: x\n\n"
    assert [m.last_id for m in decode(text) if isinstance(m, Message)] == ["1-5", "1-5", "2-6"]


def test_comments_retry_and_odd_fields() -> None:
    """Comments come out (a ping, `too far behind`); `retry:` of digits only is kept; an `id`
    with NUL is passed over; an event with an ID and no data moves the ID without an event;
    a field without a colon is that field, empty; a BOM opens the stream."""
    decoder = Decoder()
    text = "\ufeff: ping\nretry: 2500\nretry: soon\nid: a\0b\ndata: x\n\nid: 7\n\ndata\n\n"
    assert decode(text, decoder) == [
        Comment("ping"),
        Message("message", "x", None),
        Message("message", "", "7"),
    ]
    assert decoder.retry_ms == 2500 and decoder.last_id == "7"


def test_a_new_connection_drops_the_half_event_and_keeps_the_id_and_retry() -> None:
    decoder = Decoder(last_id="3-1")
    decode("retry: 100\nid: 4-2\nevent: snapshot\ndata: half", decoder)
    decoder.restart()
    assert decode("data: whole\n\n", decoder) == [Message("message", "whole", "3-1")]
    assert decoder.retry_ms == 100


def item(task_id: str, snapshot: int, *, finished: bool = False) -> FeedItem:
    return FeedItem(
        xid=900 + snapshot,
        id=snapshot,
        task_id=task_id,
        polled_at=AT,
        http_status=200,
        status="completed" if finished else "in_progress",
        progress=100 if finished else 40,
        error=None,
        finished=finished,
        label="launch",
        metadata={"user": 42} if finished else None,
        finish_reason="completed" if finished else None,
        finished_at=AT if finished else None,
    )


def follow(subscription: Subscription, body: bytes) -> list[object]:
    subscription.connecting()
    return [x for line in body.decode().splitlines() for x in subscription.line(line)]


def test_what_the_server_encodes_is_read_back_typed() -> None:
    """tracker.web's own encoding of a snapshot, a finishing snapshot and its `finished`, and a
    reset: read into typed events, each with the position EventSource would resume from."""
    body = (
        f"retry: {server.RETRY_MILLISECONDS}\n\n".encode()
        + server.encode(item("video_1", 5))
        + server.encode(item("video_1", 6, finished=True))
        + b": ping\n\n"
        + server.reset(FeedPosition(950, 9), FeedPosition(0, 999))
    )
    subscription = Subscription("video_1", None, None)
    got = follow(subscription, body)
    assert got[0] is CONNECTED and got[-2] is HEARTBEAT
    first, finishing, finished, reset = [x for x in got if x not in (CONNECTED, HEARTBEAT)]
    assert first == SnapshotEvent(
        id=5,
        task_id="video_1",
        label="launch",
        polled_at=AT,
        http_status=200,
        status="in_progress",
        progress=40,
        error=None,
        finished=False,
        last_event_id="905-5",
    )
    assert isinstance(finishing, SnapshotEvent) and finishing.finished
    assert finishing.last_event_id == "905-5"  # it carries no place of its own
    assert finished == FinishedEvent(
        task_id="video_1",
        label="launch",
        metadata={"user": 42},
        status="completed",
        progress=100,
        finish_reason=FinishReason.COMPLETED,
        finished_at=AT,
        last_event_id="906-6",
    )
    assert isinstance(reset, ResetEvent) and reset.position == "950-9"
    assert reset.last_event_id == "950-9" and "0-999" in reset.detail
    assert subscription.last_event_id == "950-9"


def test_the_next_connection_resumes_after_the_last_event() -> None:
    subscription = Subscription(["a", "b"], "launch", "1-1")
    first = subscription.connecting()
    assert first.params == (("task_id", "a"), ("task_id", "b"), ("label", "launch"))
    assert first.headers["Last-Event-ID"] == "1-1"
    follow(subscription, server.encode(item("a", 7)))
    assert subscription.connecting().headers["Last-Event-ID"] == "907-7"
    assert "Last-Event-ID" not in Subscription(None, None, None).connecting().headers


def test_kinds_of_event_a_newer_server_may_send_are_passed_over() -> None:
    body = b'event: progress\ndata: {"x": 1}\n\nevent: snapshot\ndata: not json\n\n'
    subscription = Subscription(None, None, None)
    subscription.connecting()
    lines = body.decode().splitlines()
    assert [x for line in lines[:3] for x in subscription.line(line)] == [CONNECTED]
    with pytest.raises(UnexpectedResponse, match="not JSON"):
        [subscription.line(line) for line in lines[3:]]


def test_reconnecting_waits_as_the_server_says_and_at_once_when_too_far_behind() -> None:
    """Before the server says, 3 s; then its `retry:`; after `: too far behind`, at once."""
    subscription = Subscription(None, None, None)
    follow(subscription, b": ping\n\n")
    assert subscription.lost(None) == DEFAULT_RETRY_MILLISECONDS / 1000
    follow(subscription, b"retry: 1250\n\n")
    assert subscription.lost(None) == 1.25
    follow(subscription, server.BEHIND)
    assert subscription.lost(None) == 0.0
    follow(subscription, b": ping\n\n")
    assert subscription.lost(None) == 1.25


def test_failures_are_retried_once_followed_and_refusals_never() -> None:
    """Until a connection has been followed, a failure is raised (a wrong URL, a server down);
    after, no answer or a 5xx is retried; a refusal (401, 404, 400) is raised."""
    down = ConnectionFailed("GET /v1/events to http://127.0.0.1:1: refused")
    failing = ServerError("GET /v1/events", 503, "Service Unavailable")
    refused = Unauthorized("GET /v1/events", 401, "Unauthorized")
    subscription = Subscription(None, None, None)
    subscription.connecting()
    with pytest.raises(ConnectionFailed):
        subscription.lost(down)
    follow(subscription, b"retry: 10\n\n")
    assert subscription.lost(down) == subscription.lost(failing) == 0.01
    with pytest.raises(Unauthorized):
        subscription.lost(refused)


def test_an_outage_is_logged_as_a_warning_once(caplog: pytest.LogCaptureFixture) -> None:
    """Every failed attempt to reconnect is logged, but only the first of an outage as a
    warning; once a connection is followed, the next outage is warned of again."""
    down = ConnectionFailed("GET /v1/events to http://127.0.0.1:1: refused")
    subscription = Subscription(None, None, None)
    caplog.set_level(logging.DEBUG, logger="tracker.client")
    for _ in range(2):
        follow(subscription, b": ping\n\n")
        for _ in range(3):
            subscription.connecting()
            subscription.lost(down)
    levels = [record.levelno for record in caplog.records]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG] * 2
    assert all("refused" in record.getMessage() for record in caplog.records)


def test_a_stream_refused_or_not_a_stream_is_an_error() -> None:
    subscription = Subscription(None, None, None)
    call = subscription.connecting()
    problem = b'{"title":"Not Found","status":404,"detail":"No route"}'
    with pytest.raises(NotFound, match="No route"):
        subscription.opened(call, httpx.Response(404, content=problem))
    html = httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>")
    with pytest.raises(UnexpectedResponse, match="text/html"):
        subscription.opened(call, html)
    stream = httpx.Response(200, headers={"content-type": "text/event-stream; charset=utf-8"})
    subscription.opened(call, stream)


TASK = {
    "task_id": "video_1",
    "label": None,
    "metadata": None,
    "provider": "default",
    "status": "in_progress",
    "progress": 40,
    "finished": False,
    "finish_reason": None,
    "registered_at": "2026-12-01T14:00:00+00:00",
    "last_polled_at": None,
    "next_poll_at": "2026-12-01T14:00:00+00:00",
    "finished_at": None,
    "poll_count": 1,
    "error_count": 0,
    "last_error": None,
    "model": None,
    "seconds": None,
    "size": None,
    "created_at": None,
    "completed_at": None,
    "expires_at": None,
    "downloads": [],
    "notifications": [],
}


def test_wait_reads_the_task_when_followed_after_a_reset_or_its_finish_or_a_failure() -> None:
    """The task is read once the stream is followed (it may have finished before), again after
    a reconnection or a reset, after its own `finished`, not after others' or snapshots; a read
    that failed for want of an answer is made again at the next line, a refused one raised."""
    waiting = Waiting("video_1")
    assert waiting.call.path == "/v1/tasks/video_1"
    body = server.encode(item("video_1", 5)) + server.encode(item("video_2", 6, finished=True))
    got = follow(waiting.subscription, body)
    assert [waiting.wants_read(x) for x in got] == [True, False, False, False]
    reset = ResetEvent("1-1", "never sent", "1-1")
    assert waiting.wants_read(reset)
    again = server.encode(item("video_1", 7, finished=True))
    [_, finishing, finished] = follow(waiting.subscription, again)
    assert not waiting.wants_read(finishing) and waiting.wants_read(finished)
    assert waiting.read(TASK) is None
    done = waiting.read({**TASK, "finished": True, "finish_reason": "completed", "new": 1})
    assert done is not None and done.finish_reason is FinishReason.COMPLETED
    waiting.failed(ServerError("GET /v1/tasks/video_1", 503, "Service Unavailable"))
    assert waiting.wants_read(HEARTBEAT)
    waiting.read(TASK)
    assert not waiting.wants_read(HEARTBEAT)
    with pytest.raises(NotFound):
        waiting.failed(NotFound("GET /v1/tasks/video_1", 404, "Not Found"))
