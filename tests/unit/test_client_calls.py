"""tracker.client's calls over httpx's MockTransport (no sockets): what each method sends and
how it reads the answers, and how events and wait ride out drops, ends, refusals and resets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.unit.test_client_events import TASK
from tracker.client import (
    AsyncClient,
    Client,
    ClientError,
    ConnectionFailed,
    FinishedEvent,
    FinishReason,
    InvalidRequest,
    NotFound,
    ResetEvent,
    ServerError,
    SnapshotEvent,
    Unauthorized,
    UnexpectedResponse,
    WaitTimeout,
    _sync,
)

URL = "http://tracker.test:8080"
TOKEN = "tok-9f8e7d6c5b4a39281706"
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, token: str | None = TOKEN) -> Client:
    return Client(URL, token=token, transport=httpx.MockTransport(handler))


def answer(status: int, value: object) -> httpx.Response:
    return httpx.Response(status, json=value)


def test_add_sends_each_id_once_in_calls_of_10_000_and_adds_up_the_answers() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        bodies.append(body)
        ids = body["ids"]
        return answer(201, {"added": ids[1:], "existing": ids[:1]})

    ids = [f"video_{i:05d}" for i in range(20_001)]
    with client(handler) as tracker:
        result = tracker.add([*ids, ids[5]], label="L", metadata={"user": 1})
        assert [len(body["ids"]) for body in bodies] == [10_000, 10_000, 1]
        assert all(body["label"] == "L" and body["metadata"] == {"user": 1} for body in bodies)
        assert "provider" not in bodies[0]
        assert result.existing == (ids[0], ids[10_000], ids[20_000])
        assert len(result.added) == 19_998 and result.added[0] == ids[1]
        bodies.clear()
        assert tracker.add("video_one", provider="eu").added == ()
        assert bodies == [{"ids": ["video_one"], "provider": "eu"}]
        bodies.clear()
        assert tracker.add([]).added == () and bodies == []


def test_a_refusal_of_a_later_call_names_the_index_in_the_callers_list() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            return answer(201, {"added": json.loads(request.content)["ids"], "existing": []})
        errors = [{"detail": "invalid task ID 'a/b': contains '/'", "pointer": "/ids/2"}]
        return answer(422, {"title": "Unprocessable Entity", "status": 422, "errors": errors})

    with client(handler) as tracker, pytest.raises(InvalidRequest) as refused:
        tracker.add([f"v{i}" for i in range(10_002)] + ["a/b"])
    assert [error.pointer for error in refused.value.errors] == ["/ids/10002"]
    assert len(calls) == 2


def pages(key: str, items: list[Any], seen: list[httpx.URL]) -> Handler:
    """Answers ``items`` in pages of the ``limit`` asked, the cursor being the next index."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        start = int(request.url.params.get("cursor", "0"))
        end = start + int(request.url.params["limit"])
        more = str(end) if end < len(items) else None
        return answer(200, {key: items[start:end], "next_cursor": more})

    return handler


def test_tasks_and_snapshots_read_every_page_with_the_filters() -> None:
    seen: list[httpx.URL] = []
    tasks = [{**TASK, "task_id": f"video_{i}"} for i in range(7)]
    with client(pages("tasks", tasks, seen)) as tracker:
        listed = tracker.tasks(finished=False, label="L", prefix="video_", page_size=3)
        assert [task.task_id for task in listed] == [f"video_{i}" for i in range(7)]
    assert [url.params.get("cursor") for url in seen] == [None, "3", "6"]
    assert seen[0].params["finished"] == "false" and seen[0].params["label"] == "L"
    assert seen[0].params["prefix"] == "video_" and "status" not in seen[0].params
    seen.clear()
    snapshot = {
        "id": 1,
        "task_id": "sora-2:task 1",
        "polled_at": "2026-12-01T14:00:00Z",
        "http_status": 200,
        "status": "queued",
        "progress": 0,
        "error": None,
        "body": {"id": "task 1"},
        "finished": False,
        "latency_ms": 12.5,
    }
    with client(pages("snapshots", [snapshot] * 3, seen)) as tracker:
        history = list(tracker.snapshots("sora-2:task 1", page_size=2))
    assert len(history) == 3 and history[0].polled_at.utcoffset() is not None
    assert seen[0].raw_path.startswith(b"/v1/tasks/sora-2%3Atask%201/snapshots?")
    with Client(URL) as tracker, pytest.raises(ValueError, match="page_size"):
        next(tracker.tasks(page_size=1001))


def test_records_are_typed_and_take_what_a_newer_server_adds() -> None:
    """Datetimes are aware, known finish reasons are FinishReason and unknown ones stay the
    server's word; fields this client does not know are passed over; a missing one, or a
    success that is not JSON, is an UnexpectedResponse."""
    finished = {
        **TASK,
        "finished": True,
        "finish_reason": "cancelled",
        "finished_at": "2026-12-01T14:05:00.250000+00:00",
        "downloads": [
            {
                "variant": "video",
                "state": "done",
                "path": "/v/a.mp4",
                "size_bytes": 10,
                "sha256": "ab",
                "downloaded_at": "2026-12-01T14:06:00+00:00",
                "expires_at": None,
                "attempts": 1,
                "last_error": None,
                "mirror": "new in a later version",
            }
        ],
        "shiny_new_field": [1, 2],
    }
    answers = {
        "/v1/tasks/new": answer(200, finished),
        "/v1/tasks/old": answer(200, {**TASK, "finish_reason": "removed", "finished": True}),
        "/v1/tasks/short": answer(200, {"task_id": "short"}),
        "/v1/tasks/html": httpx.Response(200, text="<html>hello</html>"),
    }
    with client(lambda request: answers[request.url.path]) as tracker:
        task = tracker.task("new")
        assert task.finish_reason == "cancelled" and task.finished_at is not None
        assert task.finished_at.microsecond == 250000 and task.finished_at.utcoffset() is not None
        assert task.downloads[0].path == "/v/a.mp4"
        assert tracker.task("old").finish_reason is FinishReason.REMOVED
        with pytest.raises(UnexpectedResponse, match="label"):
            tracker.task("short")
        with pytest.raises(UnexpectedResponse, match="not JSON"):
            tracker.task("html")


def test_no_error_and_no_repr_shows_the_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/down"):
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if path.endswith("/slow"):
            raise httpx.ReadTimeout("timed out", request=request)
        if path.endswith("/proxy"):
            return httpx.Response(502, text="<html>Bad Gateway</html>")
        if path.endswith("/text"):
            return httpx.Response(200, text="hello")
        problem = {"title": "Unauthorized", "status": 401, "detail": "Give a server token."}
        return answer(401, problem)

    with client(handler) as tracker:
        assert TOKEN not in repr(tracker) and "token=set" in repr(tracker)
        raised: list[ClientError] = []
        for name in ("down", "slow", "proxy", "text", "refused"):
            with pytest.raises(ClientError) as caught:
                tracker.task(name)
            raised.append(caught.value)
    assert [type(error) for error in raised] == [
        ConnectionFailed,
        ConnectionFailed,
        ServerError,
        UnexpectedResponse,
        Unauthorized,
    ]
    assert str(raised[0]) == (
        "GET /v1/tasks/down to http://tracker.test:8080: [Errno 111] Connection refused"
    )
    for error in raised:
        assert TOKEN not in f"{error} {error!r} {error.args} {vars(error)}"
    for bad_token in (TOKEN + "\n", f"{TOKEN} x", f"{TOKEN}é", ""):
        with pytest.raises(ValueError) as bad:
            Client(URL, token=bad_token)
        assert TOKEN not in str(bad.value)
    assert "s3cr3t" not in repr(Client("http://user:s3cr3t@tracker.test"))


def event(kind: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def snapshot(task_id: str, snapshot_id: int, *, finished: bool = False) -> dict[str, Any]:
    return {
        "id": snapshot_id,
        "task_id": task_id,
        "label": None,
        "polled_at": "2026-12-01T14:00:00+00:00",
        "http_status": 200,
        "status": "completed" if finished else "in_progress",
        "progress": 100 if finished else 50,
        "error": None,
        "finished": finished,
    }


def finished(task_id: str) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "label": None,
        "metadata": {"user": 7},
        "status": "completed",
        "progress": 100,
        "finish_reason": "completed",
        "finished_at": "2026-12-01T14:01:00+00:00",
    }


def stream(*chunks: bytes | BaseException, then: float | None = None) -> httpx.Response:
    """An event stream sending ``chunks`` (raising an exception met among them), then pings
    every ``then`` seconds for ever if given, else its end."""

    def body() -> Iterator[bytes]:
        for chunk in chunks:
            if isinstance(chunk, BaseException):
                raise chunk
            yield chunk
        while then is not None:
            time.sleep(then)
            yield b": ping\n\n"

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


class Server:
    """Each connection to /v1/events answered by the next of ``streams``; GET of a task by
    the next of ``reads``. What was asked is kept."""

    def __init__(self, streams: list[Any], reads: list[httpx.Response] | None = None) -> None:
        self.streams = streams
        self.reads = reads or []
        self.resumed_from: list[str | None] = []
        self.read_count = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/events":
            self.resumed_from.append(request.headers.get("last-event-id"))
            assert request.headers["accept"] == "text/event-stream"
            answer = self.streams.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            return answer
        self.read_count += 1
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's waits before reconnecting, recorded rather than slept."""
    waited: list[float] = []
    monkeypatch.setattr(_sync, "_rest", lambda stop, seconds: waited.append(seconds))
    return waited


def test_events_resume_after_a_drop_a_slow_stream_a_failing_server_and_an_end(
    sleeps: list[float],
) -> None:
    """Each new connection sends the last event ID; it comes after the server's `retry:`
    after a drop, a 5xx or an end, and at once after `: too far behind`."""
    dropped = httpx.RemoteProtocolError("peer closed connection")
    failing = answer(503, {"title": "Service Unavailable", "status": 503})
    server = Server(
        [
            stream(b"retry: 1500\n\n", event("snapshot", snapshot("a", 1), "1-1"), dropped),
            stream(event("snapshot", snapshot("a", 2), "2-2"), b": too far behind: reconnect\n\n"),
            failing,
            httpx.ConnectError("refused"),
            stream(event("snapshot", snapshot("a", 3)), event("finished", finished("a"), "3-3")),
            stream(event("reset", {"position": "9-9", "detail": "never sent"}, "9-9")),
        ]
    )
    got: list[Any] = []
    with client(server) as tracker:
        for item in tracker.events(task_ids=["a"], last_event_id="0-0"):
            got.append(item)
            if isinstance(item, ResetEvent):
                break
    assert [(type(e).__name__, e.last_event_id) for e in got] == [
        ("SnapshotEvent", "1-1"),
        ("SnapshotEvent", "2-2"),
        ("SnapshotEvent", "2-2"),
        ("FinishedEvent", "3-3"),
        ("ResetEvent", "9-9"),
    ]
    assert server.resumed_from == ["0-0", "1-1", "2-2", "2-2", "2-2", "3-3"]
    assert sleeps == [1.5, 0.0, 1.5, 1.5, 1.5]
    assert isinstance(got[3], FinishedEvent) and got[3].metadata == {"user": 7}


@pytest.mark.parametrize(
    ("first", "raised"),
    [
        (httpx.ConnectError("refused"), ConnectionFailed),
        (answer(503, {"title": "Service Unavailable", "status": 503}), ServerError),
        (answer(401, {"title": "Unauthorized", "status": 401}), Unauthorized),
        (httpx.Response(200, text="<html>"), UnexpectedResponse),
    ],
)
def test_events_raise_when_the_first_connection_fails(first: Any, raised: type[Exception]) -> None:
    """Until a stream has been followed once nothing is retried: a wrong URL, a server down or
    a bad token are said at once."""
    with client(Server([first])) as tracker, pytest.raises(raised):
        next(tracker.events())


def test_a_refusal_after_a_drop_is_raised_not_retried(sleeps: list[float]) -> None:
    refused = answer(401, {"title": "Unauthorized", "status": 401})
    server = Server([stream(b"retry: 5\n\n"), refused])
    with client(server) as tracker, pytest.raises(Unauthorized):
        next(tracker.events())
    assert sleeps == [0.005]


def read(finished: bool, status: int = 200) -> httpx.Response:
    if status != 200:
        return answer(status, {"title": "Service Unavailable", "status": status})
    return answer(200, {**TASK, "finished": finished, "finish_reason": "completed" * finished})


def test_wait_returns_a_task_finished_before_it_was_called(sleeps: list[float]) -> None:
    """Without a timeout, in the caller's thread: the stream is followed, the task read."""
    server = Server([stream(b"retry: 3000\n\n", b": ping\n\n")], [read(finished=True)])
    with client(server) as tracker:
        task = tracker.wait("video_1")
    assert task.finished and server.read_count == 1 and server.resumed_from == [None]


def test_wait_reads_again_after_its_finish_a_reset_a_reconnection_and_a_failed_read(
    sleeps: list[float],
) -> None:
    """The first read fails (503): it is made again at the next line; another task's finish
    is passed over; a reset and a reconnection each read the task again; its own `finished`
    reads it once more, finished."""
    server = Server(
        [
            stream(
                b"retry: 20\n\n",
                b": ping\n\n",
                event("finished", finished("video_2"), "1-1"),
                event("reset", {"position": "2-2", "detail": "never sent"}, "2-2"),
            ),
            stream(
                event("snapshot", snapshot("video_1", 3)),
                event("finished", finished("video_1"), "3-3"),
            ),
        ],
        [read(False, 503), read(False), read(False), read(False), read(True)],
    )
    with client(server) as tracker:
        task = tracker.wait("video_1", timeout=30)
    assert task.finished and task.finish_reason is FinishReason.COMPLETED
    assert server.read_count == 5 and server.resumed_from == [None, "2-2"]
    assert sleeps == [0.02]


def test_wait_raises_a_refused_read_and_its_timeout() -> None:
    """NotFound for a task that is not registered; WaitTimeout (a TimeoutError) at the
    timeout, while the stream only sends heartbeats."""
    unknown = answer(404, {"title": "Not Found", "status": 404, "detail": "No task 'x'."})
    server = Server([stream(b"retry: 1\n\n", then=0.01)], [unknown])
    with client(server) as tracker, pytest.raises(NotFound, match="No task"):
        tracker.wait("x", timeout=5)
    server = Server([stream(b"retry: 1\n\n", then=0.01)], [read(finished=False)])
    with client(server) as tracker:
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as raised:
            tracker.wait("video_1", timeout=0.2)
        assert 0.2 <= time.monotonic() - started < 1.5
    assert isinstance(raised.value, TimeoutError) and raised.value.timeout == 0.2


def async_stream(*chunks: bytes, then: float | None = None) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
        while then is not None:
            await asyncio.sleep(then)
            yield b": ping\n\n"

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())


def test_the_async_client_resumes_waits_and_refuses() -> None:
    """AsyncClient shares the logic: it resumes with the last event ID, waits for a finish,
    times out, and raises typed errors."""
    behind = b": too far behind: reconnect with Last-Event-ID\n\n"
    server = Server(
        [
            async_stream(b"retry: 0\n\n", event("snapshot", snapshot("a", 1), "1-1"), behind),
            async_stream(event("snapshot", snapshot("a", 2), "2-2")),
            async_stream(b"retry: 0\n\n", event("finished", finished("video_1"), "4-4"), then=0.01),
            async_stream(b"retry: 0\n\n", then=0.01),
        ],
        [read(False), read(True), read(False), answer(404, {"title": "Not Found", "status": 404})],
    )

    async def main() -> None:
        async with AsyncClient(URL, token=TOKEN, transport=httpx.MockTransport(server)) as c:
            events = c.events(task_ids="a")
            got = [await anext(events), await anext(events)]
            await events.aclose()
            assert [e.id for e in got if isinstance(e, SnapshotEvent)] == [1, 2]
            assert server.resumed_from == [None, "1-1"]
            task = await c.wait("video_1", timeout=10)
            assert task.finished and server.read_count == 2
            with pytest.raises(WaitTimeout):
                await c.wait("video_1", timeout=0.1)
            with pytest.raises(NotFound):
                await c.task("x")

    asyncio.run(main())
