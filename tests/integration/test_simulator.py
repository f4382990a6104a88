"""The simulator itself, over real HTTP: what the tests and the demo rely on it to do."""

from __future__ import annotations

import socket
import time
from typing import Any, cast

import httpx
import pytest

from tests.conftest import API


def test_a_missing_or_wrong_token_is_refused_with_401(api: API) -> None:
    """Without the right bearer token every request gets an OpenAI-style 401."""
    video = api.simulator.add_video()
    missing = httpx.get(f"{api.url}/v1/videos/{video}")
    wrong = httpx.get(f"{api.url}/v1/videos/{video}", headers={"Authorization": "Bearer nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert api.simulator.polls(video) == 0


def test_a_created_video_plays_its_lifecycle_one_step_per_get(api: API) -> None:
    """POST /v1/videos creates a video; each GET advances it until it stays completed."""
    headers = {"Authorization": f"Bearer {api.token}"}
    with httpx.Client(base_url=api.url, headers=headers) as client:
        created = client.post("/v1/videos", json={"model": "sora-2", "seconds": "8"}).json()
        statuses = [client.get(f"/v1/videos/{created['id']}").json()["status"] for _ in range(7)]
    assert created["object"] == "video" and created["seconds"] == "8"
    assert statuses == [
        "queued",
        "in_progress",
        "in_progress",
        "in_progress",
        "completed",
        "completed",
        "completed",
    ]
    assert api.simulator.polls(created["id"]) == 7


def lifecycle(client: httpx.Client, video_id: str, polls: int) -> list[httpx.Response]:
    return [client.get(f"/v1/videos/{video_id}") for _ in range(polls)]


def test_the_prompt_of_a_created_video_picks_what_it_does(api: API) -> None:
    """POST /v1/videos: a prompt naming `fail` fails, `vanish` answers 404 once its progress
    is over, `relay` and `envelope` answer in those shapes under a relay's ID; any other
    completes (docs/simulator.md)."""
    headers = {"Authorization": f"Bearer {api.token}"}
    with httpx.Client(base_url=api.url, headers=headers) as client:

        def create(prompt: str) -> dict[str, Any]:
            answer = client.post("/v1/videos", json={"model": "sora-2", "prompt": prompt})
            assert answer.status_code == 200
            return cast(dict[str, Any], answer.json())

        completes, fails, vanishes = (create(p) for p in ("a sunrise", "FAIL it", "vanish"))
        relay, envelope = create("a relay's"), create("an envelope, and fail")
        assert completes["id"].startswith("video_") and completes["status"] == "queued"
        assert lifecycle(client, completes["id"], 6)[-1].json()["status"] == "completed"
        failed = lifecycle(client, fails["id"], 6)[-1].json()
        assert (failed["status"], failed["progress"]) == ("failed", 75)
        assert failed["error"]["code"] == "moderation_blocked"
        gone = lifecycle(client, vanishes["id"], 7)
        assert [answer.status_code for answer in gone] == [200] * 4 + [404] * 3
        assert gone[-1].json()["error"]["code"] == "video_not_found"
        assert relay["id"].startswith("sora-2:task_") and relay["status"] == "SUBMITTED"
        relayed = lifecycle(client, relay["id"], 6)
        assert [answer.json()["status"] for answer in relayed[1:3]] == ["IN_PROGRESS"] * 2
        assert (relayed[1].json()["progress"], relayed[-1].json()["status"]) == ("25%", "SUCCESS")
        assert envelope["data"]["task_id"].startswith("sora-2:task_")
        assert envelope["data"]["state"] == "SUBMITTED"
        ended = lifecycle(client, envelope["data"]["task_id"], 6)[-1].json()
        assert (ended["code"], ended["data"]["state"]) == (0, "FAILURE")


def test_a_video_completes_when_its_completed_answer_is_first_served(api: API) -> None:
    """`completed_at` is the time the video completed, not the time it was created, and stays
    that time; its files expire an hour after it (a relay's times are in milliseconds)."""
    video = api.simulator.add_video("sora-2:task_timed", steps=1, style="relay")
    headers = {"Authorization": f"Bearer {api.token}"}
    with httpx.Client(base_url=api.url, headers=headers) as client:
        lifecycle(client, video, 2)
        time.sleep(0.3)
        before = time.time() * 1000
        completed = client.get(f"/v1/videos/{video}").json()
        after = time.time() * 1000
        time.sleep(0.05)
        again = client.get(f"/v1/videos/{video}").json()
    assert completed["status"] == "SUCCESS"
    assert completed["completed_at"] - completed["created_at"] >= 300
    assert before - 1 <= completed["completed_at"] <= after
    assert completed["expires_at"] == completed["completed_at"] + 3600 * 1000
    assert again["completed_at"] == completed["completed_at"]


def test_a_video_is_created_from_a_form_as_openais_sdk_sends_it(api: API) -> None:
    """POST /v1/videos takes multipart/form-data too (OpenAI's SDK sends its fields so)."""
    headers = {"Authorization": f"Bearer {api.token}"}
    form = {"model": (None, "sora-2-pro"), "prompt": (None, "a boat"), "seconds": (None, "12")}
    created = httpx.post(f"{api.url}/v1/videos", headers=headers, files=form)
    assert created.status_code == 200, created.text
    assert created.request.headers["content-type"].startswith("multipart/form-data")
    assert (created.json()["model"], created.json()["seconds"]) == ("sora-2-pro", "12")


def test_unknown_ids_get_404_with_an_error_body(api: API) -> None:
    """An ID the simulator never created answers 404 video_not_found."""
    response = httpx.get(
        f"{api.url}/v1/videos/nothing-here", headers={"Authorization": f"Bearer {api.token}"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "video_not_found"


def test_envelope_videos_answer_at_both_paths_in_a_relay_envelope(api: API) -> None:
    """style="envelope": {"code": 0, "msg", "data": {task_id, state, "50%", fail_reason}},
    served at /v1/videos/{id} and at /v1/video/query?id={id} from the same script; the query
    GETs are counted apart."""
    video = api.simulator.add_video("sora-2:task_E", steps=1, outcome="failed", style="envelope")
    headers = {"Authorization": f"Bearer {api.token}"}
    with httpx.Client(base_url=api.url, headers=headers) as client:
        first = client.get("/v1/video/query", params={"id": video}).json()
        second = client.get(f"/v1/videos/{video}").json()
        last = client.get("/v1/video/query", params={"id": video}).json()
        missing = client.get("/v1/video/query")
    assert (first["code"], first["msg"]) == (0, "success")
    assert (first["data"]["task_id"], first["data"]["state"]) == (video, "SUBMITTED")
    assert "id" not in first["data"] and "status" not in first["data"]
    assert (second["data"]["state"], second["data"]["progress"]) == ("IN_PROGRESS", "50%")
    assert last["data"]["state"] == "FAILURE"
    assert last["data"]["fail_reason"] == "The prompt was blocked."
    assert missing.status_code == 400
    assert (api.simulator.polls(video), api.simulator.queries[video]) == (3, 2)


def raw_exchange(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"GET /v1/videos/x HTTP/1.1\r\nno colon here\r\n\r\n", b"400"),
        (b"POST /v1/videos HTTP/1.1\r\nContent-Length: lots\r\n\r\n", b"400"),
        (b"POST /v1/videos HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"501"),
    ],
)
def test_malformed_requests_get_an_error_status_not_silence(
    api: API, request_bytes: bytes, status: bytes
) -> None:
    """Requests the simulator cannot read are answered with 400 or 501, then closed."""
    answer = raw_exchange(api.url, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status)
    assert b"Connection: close" in answer


def test_head_answers_headers_without_a_body(api: API) -> None:
    """HEAD keeps keep-alive framing intact: the same headers as GET and no body."""
    video = api.simulator.add_video()
    headers = {"Authorization": f"Bearer {api.token}"}
    with httpx.Client(base_url=api.url, headers=headers) as client:
        head = client.head(f"/v1/videos/{video}")
        after = client.get(f"/v1/videos/{video}")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert after.json()["id"] == video


def test_stats_count_every_video_request(api: API) -> None:
    """The benchmark's check that every answered poll was written relies on this count."""
    video = api.simulator.add_video()
    headers = {"Authorization": f"Bearer {api.token}"}
    for _ in range(3):
        httpx.get(f"{api.url}/v1/videos/{video}", headers=headers)
    httpx.get(f"{api.url}/v1/videos/unknown", headers=headers)
    assert httpx.get(f"{api.url}/_simulator/stats").json() == {"requests": 4, "overlaps": 0}
