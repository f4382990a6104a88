"""tracker.client's actions and export over httpx's MockTransport (no sockets): what each
method sends, how the answers are read, and that an export is read as it comes."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.unit.test_client_calls import URL, answer, client
from tests.unit.test_client_events import TASK
from tracker.client import (
    AsyncClient,
    BulkResult,
    Conflict,
    ConnectionFailed,
    Filter,
    FinishReason,
    InvalidRequest,
    RefusedTask,
    UnexpectedResponse,
)

JSONL = {"content-type": "application/x-ndjson"}


def test_bulk_by_ids_sends_each_once_in_calls_of_10_000_and_adds_up_the_counts() -> None:
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/bulk/reopen"
        bodies.append(json.loads(request.content))
        ids = bodies[-1]["ids"]
        return answer(200, {"matched": len(ids), "changed": len(ids) // 2})

    ids = [f"video_{i:05d}" for i in range(20_001)]
    with client(handler) as tracker:
        assert tracker.bulk_reopen([*ids, ids[3]]) == BulkResult(20_001, 10_000)
        assert [len(body["ids"]) for body in bodies] == [10_000, 10_000, 1]
        assert bodies[2] == {"ids": [ids[-1]]}
        bodies.clear()
        assert tracker.bulk_reopen("video_one") == BulkResult(1, 0)
        assert bodies == [{"ids": ["video_one"]}]
        bodies.clear()
        assert tracker.bulk_reopen(()) == BulkResult(0, 0) and bodies == []


def test_bulk_by_filter_sends_the_criteria_set_and_names_a_later_calls_bad_id() -> None:
    sent: list[tuple[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append((request.url.path, body))
        if "ids" in body and len(sent) == 3:  # the second call of the IDs
            errors = [{"detail": "invalid task ID 'a/b': contains '/'", "pointer": "/ids/1"}]
            return answer(422, {"title": "Unprocessable Entity", "status": 422, "errors": errors})
        return answer(200, {"matched": 3, "changed": 1})

    with client(handler) as tracker:
        assert tracker.bulk_remove(Filter(label="L", finished=False)) == BulkResult(3, 1)
        assert sent == [("/v1/bulk/remove", {"filter": {"label": "L", "finished": False}})]
        with pytest.raises(InvalidRequest) as refused:
            tracker.bulk_poll([f"video_{i:05d}" for i in range(10_000)] + ["video_ok", "a/b"])
        assert [e.pointer for e in refused.value.errors] == ["/ids/10001"]
        assert tracker.bulk_poll(Filter()) == BulkResult(3, 1)
        assert sent[-1] == ("/v1/bulk/poll", {"filter": {}})


def test_poll_now_and_reopen_post_to_the_tasks_path_and_a_409_is_a_conflict() -> None:
    paths: list[bytes] = []
    refusal = {
        "title": "Conflict",
        "status": 409,
        "detail": "task 'sora-2:task 1' completed: a completed video is not watched again",
        "refused": [
            {"task_id": "sora-2:task 1", "refusal": "completed", "finish_reason": "completed"},
            {"task_id": "sora-2:task 2", "refusal": "deleted"},  # a newer server's: passed over
            "not an object",
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path)
        assert request.method == "POST"
        if request.url.path.endswith("/reopen"):
            return answer(409, refusal)
        return answer(202, {**TASK, "task_id": "sora-2:task 1"})

    with client(handler) as tracker:
        assert tracker.poll_now("sora-2:task 1").task_id == "sora-2:task 1"
        with pytest.raises(Conflict) as refused:
            tracker.reopen("sora-2:task 1")
    assert paths == [b"/v1/tasks/sora-2%3Atask%201/poll", b"/v1/tasks/sora-2%3Atask%201/reopen"]
    assert refused.value.status == 409 and refused.value.detail == refusal["detail"]
    assert refused.value.refused == (RefusedTask("sora-2:task 1", "completed", "completed"),)


def row(task_id: str) -> bytes:
    fields = {**TASK, "task_id": task_id, "not_found_count": 0, "lease_owner": None}
    return json.dumps(fields).encode() + b"\n"


def test_export_sends_its_parameters_and_reads_each_row_as_it_comes() -> None:
    """The first row is read before the rest of the body arrives; a connection that breaks
    after it is ConnectionFailed; rows are Tasks, the columns the API's Task lacks passed
    over."""
    seen: list[httpx.URL] = []

    def body() -> Iterator[bytes]:
        yield row("video_1")
        assert len(read) == 1, "the first row was not handed over before the next was sent"
        yield row("video_2")[:20]
        raise httpx.RemoteProtocolError("peer closed connection mid-body")

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, headers=JSONL, content=body())

    read: list[str] = []
    which = Filter(finished=True, finish_reason=FinishReason.FAILED, error="quota")
    moment = datetime(2026, 12, 1, 12, tzinfo=UTC)
    with client(handler) as tracker:
        rows = tracker.export_tasks(which, since=moment)
        read.append(next(rows).task_id)
        with pytest.raises(ConnectionFailed, match="GET /v1/export"):
            next(rows)
    assert read == ["video_1"]
    assert list(seen[0].params.multi_items()) == [
        ("table", "tasks"),
        ("format", "jsonl"),
        ("finished", "true"),
        ("finish_reason", "failed"),
        ("error", "quota"),
        ("since", "2026-12-01T12:00:00+00:00"),
    ]


def test_export_bytes_are_the_pieces_sent_and_a_wrong_answer_is_unexpected() -> None:
    pieces = [b"task_id,label\n", b"video_1,\n"]
    answers = {
        "csv": httpx.Response(200, headers={"content-type": "text/csv"}, content=iter(pieces)),
        "jsonl": httpx.Response(200, headers={"content-type": "text/html"}, text="<html>"),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return answers[request.url.params["format"]]

    with client(handler) as tracker:
        assert b"".join(tracker.export_bytes("tasks", "csv")) == b"".join(pieces)
        with pytest.raises(UnexpectedResponse, match="text/html"):
            list(tracker.export_snapshots())
    not_json = httpx.Response(200, headers=JSONL, content=row("video_1") + b"<html>\n")
    with client(lambda request: not_json) as tracker:
        rows = tracker.export_tasks()
        assert next(rows).task_id == "video_1"
        with pytest.raises(UnexpectedResponse, match="not JSON"):
            next(rows)


def test_the_async_client_acts_and_streams_an_export() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/export":

            async def body() -> AsyncIterator[bytes]:
                yield row("video_1") + b"\n"  # an empty line between rows is passed over
                yield row("video_2")

            return httpx.Response(200, headers=JSONL, content=body())
        if request.url.path.startswith("/v1/bulk/"):
            return answer(200, {"matched": 2, "changed": 2})
        if request.url.path.endswith("/poll"):
            return answer(409, {"title": "Conflict", "status": 409, "detail": "finished"})
        return answer(200, TASK)

    async def main() -> None:
        async with AsyncClient(URL, transport=httpx.MockTransport(handler)) as tracker:
            tasks = [task.task_id async for task in tracker.export_tasks()]
            assert tasks == ["video_1", "video_2"]
            assert await tracker.bulk_remove(["a", "b"]) == BulkResult(2, 2)
            assert (await tracker.reopen("video_1")).task_id == "video_1"
            with pytest.raises(Conflict, match="finished"):
                await tracker.poll_now("video_1")

    asyncio.run(main())


def test_an_export_is_read_in_flat_memory() -> None:
    """10,000 rows (5.4 MB of JSON lines, in pieces of 100) are read while the client holds
    under 1 MB at its peak (some 0.2 MB when written): each row is handed over as it comes,
    none kept."""
    line = row("video_1")

    def body() -> Iterator[bytes]:
        for _ in range(100):
            yield line * 100

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=JSONL, content=body())

    with client(handler) as tracker:
        tracemalloc.start()
        try:
            count = sum(1 for _ in tracker.export_tasks())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert count == 10_000 and len(line) * count > 5_000_000
    assert peak < 1_000_000, f"{peak:,} bytes at the peak"
