"""The API client turns every answer, good or bad, into a FetchResult (transport double)."""

from __future__ import annotations

import asyncio
import errno
import json
import os
from collections.abc import Callable

import httpx
import pytest

from tracker.core.models import FetchResult
from tracker.core.secrets import Secret
from tracker.errors import LocalResourceError
from tracker.http.client import MAX_BODY_BYTES, VideoClient
from tracker.http.transfers import ContentClient, TransferError, TransferRefused

VIDEO = {"id": "video_1", "object": "video", "status": "in_progress", "progress": 40}


def fetch(
    handler: Callable[[httpx.Request], httpx.Response],
    task_id: str = "video_1",
    timeout: float = 5.0,
    status_path: str = "/v1/videos/{id}",
) -> FetchResult:
    async def go() -> FetchResult:
        transport = httpx.MockTransport(handler)
        async with VideoClient(
            "https://api.example",
            Secret("sk-unit-42"),
            timeout=timeout,
            transport=transport,
            status_path=status_path,
        ) as client:
            return await client.fetch(task_id)

    return asyncio.run(go())


def test_a_video_answer_is_parsed_and_the_body_kept_as_received() -> None:
    """200 with a video object: video set, no error, the raw text stored verbatim."""
    raw = '{"id": "video_1",  "status": "in_progress", "progress": "45%"}'
    result = fetch(lambda request: httpx.Response(200, text=raw))
    assert result.error is None
    assert result.video is not None and result.video.progress == 45
    assert result.body == raw
    assert result.http_status == 200
    assert result.latency_ms >= 0


def test_the_request_carries_the_bearer_token_and_one_escaped_segment() -> None:
    """GET /v1/videos/{id} with Authorization: Bearer; ':' stays, '"' is escaped."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=VIDEO)

    fetch(handler, task_id='sora-2:task_"x"')
    assert seen[0].method == "GET"
    assert seen[0].url.raw_path == b"/v1/videos/sora-2:task_%22x%22"
    assert seen[0].headers["authorization"] == "Bearer sk-unit-42"


def test_a_status_path_in_the_query_sends_the_id_as_an_escaped_query_value() -> None:
    """status_path "/v1/video/query?id={id}": the ID is one query value, ":" kept, "&" and
    "+" escaped, and the server reads back the very ID."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "queued"})

    result = fetch(handler, task_id="sora-2:task_a&b+c", status_path="/v1/video/query?id={id}")
    assert result.error is None
    assert seen[0].url.raw_path == b"/v1/video/query?id=sora-2:task_a%26b%2Bc"
    assert seen[0].url.params["id"] == "sora-2:task_a&b+c"


def test_a_status_path_that_cannot_be_used_is_refused_when_the_client_is_made() -> None:
    """A template without {id} (or with a host) raises ValueError before any request."""
    with pytest.raises(ValueError, match=r"\{id\}"):
        VideoClient("https://api.example", Secret("sk-unit-42"), timeout=5, status_path="/v1/x")


def test_a_relay_envelope_is_read_and_its_body_kept_as_received() -> None:
    """200 with {"code": 0, "msg", "data": {task_id, state, progress}}: the video is read from
    data and the raw text is stored verbatim."""
    raw = '{"code": 0, "msg": "success", "data": {"task_id": "video_1", "state": "RUNNING"}}'
    result = fetch(lambda request: httpx.Response(200, text=raw))
    assert result.error is None
    assert result.video is not None and result.video.status == "RUNNING"
    assert result.body == raw


@pytest.mark.parametrize("status", [200, 400])
def test_an_envelope_saying_the_request_failed_is_a_relay_error(status: int) -> None:
    """{"code": "task_not_exist", "message": …} at 200 or 400: an error snapshot carrying the
    relay's code and message, the HTTP status as received, no video, the body kept."""
    body = {"code": "task_not_exist", "message": "task_not_exist", "data": None}
    result = fetch(lambda request: httpx.Response(status, json=body))
    assert (result.http_status, result.video) == (status, None)
    assert result.error == {
        "type": "relay_error",
        "code": "task_not_exist",
        "message": "task_not_exist",
    }
    assert result.body is not None and json.loads(result.body) == body


def test_an_answer_about_another_task_is_an_error_and_its_status_is_not_used() -> None:
    """A relay answering another task's status: an id_mismatch error naming both IDs, no video,
    so nothing of that task is stored as this one's."""
    other = {"id": "video_2", "status": "completed", "progress": 100}
    result = fetch(lambda request: httpx.Response(200, json=other), task_id="video_1")
    assert (result.http_status, result.video) == (200, None)
    assert result.error == {
        "type": "id_mismatch",
        "message": "the answer is about task 'video_2', not 'video_1'",
    }
    assert result.body is not None and json.loads(result.body) == other


def test_a_relay_prefix_on_the_answered_id_is_not_a_mismatch() -> None:
    """Polling "task_1" and hearing about "sora-2:task_1" is the same task."""
    answer = {"id": "sora-2:task_1", "status": "in_progress"}
    result = fetch(lambda request: httpx.Response(200, json=answer), task_id="task_1")
    assert result.error is None and result.video is not None


def test_an_api_error_body_becomes_the_snapshot_error() -> None:
    """4xx/5xx with {"error": {...}} keep the API's error object and the status."""
    body = {
        "error": {
            "message": "Video not found",
            "type": "invalid_request_error",
            "code": "video_not_found",
        }
    }
    result = fetch(lambda request: httpx.Response(404, json=body))
    assert (result.http_status, result.video) == (404, None)
    assert result.error == body["error"]
    assert result.body is not None and json.loads(result.body) == body


def test_a_non_json_error_page_is_described_with_an_excerpt() -> None:
    """A 502 HTML page becomes an http_error with the start of the page; no body stored."""
    result = fetch(lambda request: httpx.Response(502, text="<html>bad gateway</html>"))
    assert result.http_status == 502
    assert result.error["type"] == "http_error"
    assert "bad gateway" in result.error["body"]
    assert result.body is None


def test_a_200_that_is_not_json_is_an_error() -> None:
    """A 200 whose body is not JSON is an error, not a success."""
    result = fetch(lambda request: httpx.Response(200, text="<!doctype html>"))
    assert result.video is None
    assert result.error["type"] == "invalid_json"


def test_json_that_is_not_a_video_is_an_error_with_the_body_kept() -> None:
    """A JSON object without a status is an error; the JSON is stored for inspection."""
    result = fetch(lambda request: httpx.Response(200, json={"code": 0, "data": None}))
    assert result.video is None
    assert result.error["type"] == "not_a_video"
    assert result.body == '{"code":0,"data":null}'


def test_a_body_over_one_mebibyte_is_not_stored_and_is_an_error() -> None:
    """Bodies over 1 MiB are dropped and make the poll an error (docs/tables.md)."""
    huge = json.dumps({**VIDEO, "padding": "x" * MAX_BODY_BYTES})
    result = fetch(lambda request: httpx.Response(200, text=huge))
    assert (result.body, result.video) == (None, None)
    assert result.error["type"] == "body_too_large"


def test_timeouts_and_connection_errors_have_no_http_status() -> None:
    """No response: http_status is NULL and the error says what happened."""

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    timed_out = fetch(timeout, timeout=2)
    assert timed_out.http_status is None
    assert timed_out.error == {"type": "timeout", "message": "no complete response within 2s"}
    failed = fetch(refused)
    assert failed.http_status is None
    assert failed.error["type"] == "connection_error"
    assert "Connection refused" in failed.error["message"]


@pytest.mark.parametrize(
    ("number", "local"),
    [
        (errno.EMFILE, True),
        (errno.ENFILE, True),
        (errno.ENOBUFS, True),
        (errno.ENOMEM, True),
        (errno.ECONNREFUSED, False),
        (errno.ECONNRESET, False),
    ],
)
def test_another_transport_out_of_local_resources_raises_instead_of_failing_the_poll(
    number: int, local: bool
) -> None:
    """httpx's own transport raises ConnectError from the OS error: a shortage of this
    machine's (open files, buffers, memory) is raised as LocalResourceError, no FetchResult;
    any other OS error stays a connection_error of the poll."""

    def handler(request: httpx.Request) -> httpx.Response:
        try:
            raise OSError(number, os.strerror(number))
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc

    if local:
        with pytest.raises(LocalResourceError, match=os.strerror(number)):
            fetch(handler)
    else:
        assert fetch(handler).error["type"] == "connection_error"


def test_redirects_are_not_followed() -> None:
    """A redirect could take the token to another host: the poll fails instead."""
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(302, headers={"location": "https://evil.example/steal"})

    result = fetch(handler)
    assert len(calls) == 1
    assert result.error["type"] == "redirect"
    assert "evil.example" in result.error["message"]


@pytest.mark.parametrize(
    ("headers", "retry_after", "poll_after"),
    [
        ({"retry-after": "7"}, 7.0, None),
        ({"retry-after": "soon"}, None, None),
        ({"openai-poll-after-ms": "2500"}, None, 2.5),
        ({"openai-poll-after-ms": "x"}, None, None),
    ],
)
def test_waits_asked_by_the_api_are_read_from_headers(
    headers: dict[str, str], retry_after: float | None, poll_after: float | None
) -> None:
    """Retry-After (seconds) and openai-poll-after-ms become seconds to wait."""
    result = fetch(lambda request: httpx.Response(429, headers=headers, json={}))
    assert result.retry_after == retry_after
    assert result.poll_after == poll_after


def test_nan_and_infinity_are_not_json() -> None:
    """Bodies with NaN or Infinity (which PostgreSQL's json refuses) count as not JSON."""
    result = fetch(lambda request: httpx.Response(200, text='{"status": "queued", "p": NaN}'))
    assert (result.video, result.body) == (None, None)
    assert result.error["type"] == "invalid_json"


def test_unstorable_characters_are_replaced_in_what_is_read() -> None:
    """NUL and lone surrogates sent as \\u escapes never reach a column; the raw body keeps
    its escapes, which every database stores."""
    raw = '{"status": "in\\u0000prog\\ud800ress", "error": {"message": "x\\udfff"}}'
    result = fetch(lambda request: httpx.Response(200, text=raw))
    assert result.video is not None
    assert result.video.status == "in\ufffdprog\ufffdress"
    assert result.video.error == {"message": "x\ufffd"}
    assert result.body == raw


def test_a_token_echoed_by_the_api_is_redacted_everywhere() -> None:
    """A relay that repeats the key in its answer does not get it stored or logged."""
    body = {"error": {"message": "Incorrect API key provided: sk-unit-42", "type": "auth"}}
    result = fetch(lambda request: httpx.Response(401, json=body))
    assert "sk-unit-42" not in str(result.error) and "sk-unit-42" not in (result.body or "")
    assert result.error["message"] == "Incorrect API key provided: [redacted]"


@pytest.mark.parametrize("value", ["1e12", "inf", "Wed, 01 Jan 3000 00:00:00 GMT"])
def test_absurd_waits_are_capped_at_a_day(value: str) -> None:
    """A Retry-After of centuries is a broken header: it is honoured for a day at most."""
    result = fetch(lambda request: httpx.Response(503, headers={"retry-after": value}, json={}))
    assert result.retry_after == 86400.0


def test_a_token_too_short_to_be_told_from_text_is_not_redacted() -> None:
    """A one-letter token would blank every such letter of every answer: it is left alone."""

    async def go() -> FetchResult:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, json=VIDEO))
        async with VideoClient(
            "https://api.example", Secret("t"), timeout=5, transport=transport
        ) as client:
            return await client.fetch("video_1")

    result = asyncio.run(go())
    assert result.video is not None and result.video.status == "in_progress"
    assert "[redacted]" not in (result.body or "")


def download_error(handler: Callable[[httpx.Request], httpx.Response]) -> TransferError:
    async def go() -> TransferError:
        client = ContentClient(
            "https://api.example",
            Secret("sk-unit-42"),
            timeout=5.0,
            transport=httpx.MockTransport(handler),
        )
        try:
            await client.download("video_1", "video", lambda _chunk: None)
        except TransferError as exc:
            return exc
        finally:
            await client.aclose()
        raise AssertionError("the download did not fail")

    return asyncio.run(go())


def test_a_refusal_by_the_storage_a_redirect_led_to_is_worth_retrying() -> None:
    """The API's own 403 is final; a 403 from the host its redirect led to (a lapsed signed
    link) is said to come from there, and a later attempt tries again."""

    def api_refuses(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"error": {"message": "not yours"}})

    def storage_refuses(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.example":
            return httpx.Response(302, headers={"location": "https://cdn.example/v.mp4?sig=x"})
        return httpx.Response(403, text="Request has expired")

    from_api, from_storage = download_error(api_refuses), download_error(storage_refuses)
    assert str(from_api).startswith("HTTP 403") and isinstance(from_api, TransferRefused)
    assert str(from_storage).startswith("the redirect to cdn.example got HTTP 403")
    assert not isinstance(from_storage, TransferRefused)
