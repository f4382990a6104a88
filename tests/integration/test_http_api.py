"""The HTTP API over a real uvicorn on 127.0.0.1, on real SQLite and PostgreSQL, beside a
daemon polling the simulator: registering, listing, following, removing; problems, tokens."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import API, make_tracker
from tests.web import (
    AUTH,
    TOKEN,
    Event,
    daemon_running,
    events_of,
    follow_in_background,
    read_events,
)
from tracker import Secret, Tracker
from tracker.core.feed import FeedPosition
from tracker.settings import Settings
from tracker.settings.providers import Provider
from tracker.store.schema import tasks
from tracker.testing import RunningApp
from tracker.web import events as feed

NOW = partial(datetime.now, UTC)


def with_http(settings: Settings, **more: object) -> Settings:
    """The settings with the HTTP service on a free port, asking for the test's token."""
    return replace(settings, http_port=0, server_tokens=(Secret(TOKEN),), **more)  # type: ignore[arg-type]


def test_a_task_registered_over_http_is_followed_to_its_end_through_events(
    api: API, database_url: str
) -> None:
    """POST /v1/tasks registers; the daemon serving the app polls it; /v1/events tells each
    snapshot and then `finished`; the task reads as completed."""
    video = api.simulator.add_video("video_http_1", steps=3)
    with make_tracker(api, database_url) as tracker:
        tracker.settings = with_http(tracker.settings)
        with daemon_running(tracker):
            url = wait_for_port(tracker)
            with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
                events, reader = follow_in_background(client, until=6, params={"task_id": video})
                created = client.post(
                    "/v1/tasks", json={"ids": [video], "label": "L", "metadata": {"user": 42}}
                )
                assert created.status_code == 201
                assert created.json() == {"added": [video], "existing": []}
                reader.join(60)
                task = client.get(f"/v1/tasks/{video}").json()
    kinds = [event.event for event in events]
    assert kinds == ["snapshot"] * 5 + ["finished"]
    assert [event.data["status"] for event in events[:5]] == [
        "queued",
        "in_progress",
        "in_progress",
        "in_progress",
        "completed",
    ]
    assert events[-1].data["metadata"] == {"user": 42} and events[-1].data["label"] == "L"
    assert events[-1].data["finish_reason"] == "completed"
    # The finished event carries the finishing snapshot's place in the feed.
    positions = [FeedPosition.parse(event.id or "") for event in events[:4]]
    positions.append(FeedPosition.parse(events[-1].id or ""))
    assert positions == sorted(p for p in positions if p is not None)
    assert positions[-1] is not None and positions[-1].id == events[-2].data["id"]
    assert task["finish_reason"] == "completed" and task["metadata"] == {"user": 42}


def test_reconnecting_with_last_event_id_misses_nothing_and_repeats_nothing(
    api: API, database_url: str
) -> None:
    """A client that drops mid-stream and comes back with Last-Event-ID gets exactly the
    events after it: every snapshot of every task once, in order, until all finished."""
    videos = [api.simulator.add_video(f"video_resume_{i}", steps=6) for i in range(4)]
    with make_tracker(api, database_url) as tracker:
        tracker.settings = with_http(tracker.settings)
        with daemon_running(tracker):
            url = wait_for_port(tracker)
            with httpx.Client(base_url=url, headers=AUTH, timeout=30) as client:
                tracker.add(videos)
                first = read_events(client, "/v1/events", until=5)
                time.sleep(0.5)  # the daemon goes on meanwhile

                def all_finished(events: list[Event]) -> bool:
                    finished = [e for e in first + events if e.event == "finished"]
                    return len(finished) == len(videos)

                resumed = read_events(
                    client,
                    "/v1/events",
                    until=all_finished,
                    headers={"Last-Event-ID": first[-1].id or ""},
                )
        stored = sorted(s.id for video in videos for s in tracker.history(video))
    seen = [e.data["id"] for e in first + resumed if e.event == "snapshot"]
    assert len(seen) == len(set(seen)), "an event came twice"
    assert seen == sorted(seen)
    assert seen == [i for i in stored if i >= seen[0]]


def wait_for_port(tracker: Tracker) -> str:
    deadline = time.monotonic() + 30
    while "--http-port" not in tracker.daemon.ports:
        assert time.monotonic() < deadline, "the daemon did not listen"
        time.sleep(0.05)
    return f"http://127.0.0.1:{tracker.daemon.ports['--http-port']}"


Served = tuple[Tracker, httpx.Client]


@pytest.fixture
def served(api: API, database_url: str) -> Iterator[Served]:
    """`tracker serve` (the app alone) on the test database, with a server token."""
    with make_tracker(api, database_url) as tracker:
        settings = with_http(tracker.settings)
        with (
            RunningApp(settings, tracker.database) as url,
            httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
        ):
            yield tracker, client


def test_pages_of_tasks_are_newest_first_and_stable_while_tasks_arrive(served: Served) -> None:
    """Paging with next_cursor visits every task once, newest first, while more are
    registered between two pages; filters narrow the list; a forged cursor is a 400 naming it."""
    _tracker, client = served
    for index in range(12):
        client.post(
            "/v1/tasks",
            json={"ids": [f"video_p{index:02d}"], "label": "even" if index % 2 == 0 else "odd"},
        )
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/tasks", params=params).json()
        seen += [task["task_id"] for task in page["tasks"]]
        client.post("/v1/tasks", json={"ids": [f"video_late_{len(seen)}"]})
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"video_p{index:02d}" for index in reversed(range(12))]
    evens = client.get("/v1/tasks", params={"label": "even", "limit": 100}).json()["tasks"]
    assert [task["task_id"] for task in evens] == [f"video_p{i:02d}" for i in (10, 8, 6, 4, 2, 0)]
    bad = client.get("/v1/tasks", params={"cursor": "not-ours"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"] == [
        {"detail": bad.json()["errors"][0]["detail"], "parameter": "cursor"}
    ]


def test_sorted_pages_keep_their_order_across_ties_and_cursors(served: Served) -> None:
    """Tasks registered in one call share their registration time: sorted by it, or by a
    progress several share, pages of four follow the task IDs within the ties; a cursor leads
    on in its own order only; an unknown sort is a 422 naming it."""
    tracker, client = served
    ids = [f"video_s{index:02d}" for index in range(10)]
    assert client.post("/v1/tasks", json={"ids": ids}).status_code == 201
    with tracker.database.engine.begin() as connection:
        for index, task_id in enumerate(ids[:8]):
            connection.execute(
                update(tasks).where(tasks.c.task_id == task_id).values(progress=index % 3 * 10)
            )

    def pages(**params: str) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            more = {"cursor": cursor} if cursor else {}
            page = client.get("/v1/tasks", params={"limit": 4, **params, **more}).json()
            seen += [task["task_id"] for task in page["tasks"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return seen

    assert pages(sort="registered_at", order="asc") == ids
    assert pages() == ids[::-1]
    # Each progress shared, newest (here: the greatest ID) first; no progress at all last.
    by_progress = [ids[index] for index in (5, 2, 7, 4, 1, 6, 3, 0, 9, 8)]
    assert pages(sort="progress", order="desc") == by_progress
    first = client.get("/v1/tasks", params={"limit": 4, "sort": "progress"}).json()
    elsewhere = client.get("/v1/tasks", params={"cursor": first["next_cursor"]})
    unknown = client.get("/v1/tasks", params={"sort": "size"})
    assert elsewhere.status_code == 400
    assert elsewhere.json()["errors"][0]["parameter"] == "cursor"
    assert unknown.status_code == 422
    assert [error["parameter"] for error in unknown.json()["errors"]] == ["sort"]


def test_invalid_registrations_name_each_field_and_register_nothing(served: Served) -> None:
    """All or nothing: bad IDs, oversized metadata, too many IDs, unknown fields, a body that is
    not JSON: each a problem naming the field, and no task written."""
    tracker, client = served
    bad_ids = client.post("/v1/tasks", json={"ids": ["video_ok", "bad id", "a/b"]})
    assert bad_ids.status_code == 422
    assert [e["pointer"] for e in bad_ids.json()["errors"]] == ["/ids/1", "/ids/2"]
    big = {"x": "y" * (17 * 1024)}
    too_big = client.post(
        "/v1/tasks", json={"tasks": [{"id": "video_a"}, {"id": "video_b", "metadata": big}]}
    )
    assert too_big.status_code == 422
    assert [e["pointer"] for e in too_big.json()["errors"]] == ["/tasks/1/metadata"]
    too_many = client.post("/v1/tasks", json={"ids": [f"v{i}" for i in range(10_001)]})
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["pointer"] == "/ids"
    unknown = client.post("/v1/tasks", json={"ids": ["video_c"], "colour": "red"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["pointer"] == "/colour"
    not_json = client.post(
        "/v1/tasks", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code in (400, 422)
    assert not_json.headers["content-type"] == "application/problem+json"
    assert tracker.tasks() == []


def test_every_bad_entry_of_a_registration_is_named_in_one_problem(served: Served) -> None:
    """An entry of the wrong type does not hide the others: each bad ID, metadata object and
    field is named with its pointer in the same answer, in the rule's own words."""
    tracker, client = served
    ids = ["bad id", "a/b", "", "x" * 300, 5, ".", "video_fine"]
    answer = client.post("/v1/tasks", json={"ids": ids})
    assert answer.status_code == 422
    errors = answer.json()["errors"]
    assert [error["pointer"] for error in errors] == [f"/ids/{index}" for index in range(6)]
    assert errors[0]["detail"].startswith("invalid task ID 'bad id': contains whitespace")
    assert errors[4]["detail"] == "Input should be a valid string"
    big = {"x": "y" * (17 * 1024)}
    tasks = [{"id": 7}, {"id": "a b", "metadata": big}, {"id": "video_ok", "label": 3}]
    answer = client.post("/v1/tasks", json={"tasks": tasks, "colour": "red"})
    assert answer.status_code == 422
    assert [error["pointer"] for error in answer.json()["errors"]] == [
        "/tasks/0/id",
        "/tasks/1/id",
        "/tasks/1/metadata",
        "/tasks/2/label",
        "/colour",
    ]
    assert tracker.tasks() == []


def test_a_body_not_sent_as_json_is_answered_415_naming_the_content_type(
    served: Served,
) -> None:
    """A form, text, or a body without a Content-Type is refused with 415, naming
    Content-Type: application/json; JSON with a charset, or a +json type, is read."""
    tracker, client = served
    body = json.dumps({"ids": ["video_json"]}).encode()
    for content_type, content in (
        ("application/x-www-form-urlencoded", b"ids=video_json"),
        ("text/plain", body),
        (None, body),
        (None, b""),
    ):
        headers = {"content-type": content_type} if content_type else {}
        answer = client.post("/v1/tasks", content=content, headers=headers)
        assert answer.status_code == 415, (content_type, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert "Content-Type: application/json" in answer.json()["detail"]
        assert [error["parameter"] for error in answer.json()["errors"]] == ["Content-Type"]
    assert tracker.tasks() == []
    for content_type in ("application/json; charset=utf-8", "application/vnd.tracker+json"):
        answer = client.post("/v1/tasks", content=body, headers={"content-type": content_type})
        assert answer.status_code == 201, (content_type, answer.text)
    assert [task.task_id for task in tracker.tasks()] == ["video_json"]


def test_a_server_given_the_providers_takes_only_theirs(api: API, database_url: str) -> None:
    """Given the providers file, the server refuses a task of a provider it does not declare
    (or of none, when it declares no `default`) with a 422 naming each `provider` field, and
    registers nothing; without one, any well-formed name is taken (the daemons sharing the
    database may declare it)."""
    both = (Provider(name="default", api_base=api.url), Provider(name="relay-b", api_base=api.url))
    with make_tracker(api, database_url) as tracker:
        answers = {}
        for name, providers in (("both", both), ("relay-b", both[1:]), ("none", ())):
            settings = with_http(tracker.settings, providers=providers)
            with (
                RunningApp(settings, tracker.database) as url,
                httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
            ):
                tasks = [
                    {"id": f"video_{name}_1", "provider": "relay-b"},
                    {"id": f"video_{name}_2", "provider": "relay-x"},
                    {"id": f"video_{name}_3"},
                ]
                answers[name] = [
                    client.post("/v1/tasks", json={"ids": [f"video_{name}"], "provider": "nope"}),
                    client.post("/v1/tasks", json={"tasks": tasks}),
                    client.post("/v1/tasks", json={"ids": [f"video_{name}_default"]}),
                ]
        registered = {task.task_id: task.provider for task in tracker.tasks()}
    named, listed, plain = answers["both"]
    assert (named.status_code, listed.status_code, plain.status_code) == (422, 422, 201)
    [error] = named.json()["errors"]
    assert error["pointer"] == "/provider"
    assert (
        error["detail"] == "unknown provider 'nope': the providers file declares default, relay-b"
    )
    assert [e["pointer"] for e in listed.json()["errors"]] == ["/tasks/1/provider"]
    named, listed, plain = answers["relay-b"]
    assert (named.status_code, listed.status_code, plain.status_code) == (422, 422, 422)
    assert [e["pointer"] for e in listed.json()["errors"]] == [
        "/tasks/1/provider",
        "/tasks/2/provider",
    ]
    assert [e["pointer"] for e in plain.json()["errors"]] == ["/provider"]
    assert "declares no 'default'" in plain.json()["errors"][0]["detail"]
    assert [answer.status_code for answer in answers["none"]] == [201, 201, 201]
    assert registered == {
        "video_both_default": "default",
        "video_none": "nope",
        "video_none_1": "relay-b",
        "video_none_2": "relay-x",
        "video_none_3": "default",
        "video_none_default": "default",
    }


def test_one_task_its_history_and_its_removal(served: Served) -> None:
    """GET one task, DELETE it (its history kept, and ended by a snapshot of the removal),
    404 for an unknown one."""
    _tracker, client = served
    client.post(
        "/v1/tasks",
        json={"tasks": [{"id": "video_one", "label": "solo", "metadata": {"k": [1, 2]}}]},
    )
    task = client.get("/v1/tasks/video_one").json()
    assert (task["label"], task["metadata"], task["downloads"], task["notifications"]) == (
        "solo",
        {"k": [1, 2]},
        [],
        [],
    )
    assert client.get("/v1/tasks/video_unknown").status_code == 404
    assert client.delete("/v1/tasks/video_unknown").status_code == 404
    removed = client.delete("/v1/tasks/video_one").json()
    assert removed["removed"] is True and removed["task"]["finish_reason"] == "removed"
    again = client.delete("/v1/tasks/video_one").json()
    assert again["removed"] is False
    [mark] = client.get("/v1/tasks/video_one/snapshots").json()["snapshots"]
    assert (mark["finished"], mark["http_status"], mark["error"]) == (True, None, None)
    stats = client.get("/v1/stats").json()
    assert stats["finished"] == {"removed": 1}


def test_every_endpoint_wants_a_token_but_health(served: Served) -> None:
    """Without a token, or with a wrong one, every endpoint answers 401 (and says how to
    authenticate), the OpenAPI document too, and the documentation's page sends a browser to
    the login page; /healthz answers anyone; with the token, each works."""
    _tracker, client = served
    calls = [
        ("GET", "/openapi.json"),
        ("GET", "/v1/tasks"),
        ("POST", "/v1/tasks"),
        ("GET", "/v1/tasks/x"),
        ("GET", "/v1/tasks/x/snapshots"),
        ("DELETE", "/v1/tasks/x"),
        ("GET", "/v1/stats"),
        ("GET", "/v1/events"),
        ("GET", "/metrics"),
    ]
    for method, path in calls:
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong-token-0000000000"}):
            answer = client.request(method, path, headers=headers, json={"ids": ["x"]})
            assert answer.status_code == 401, (method, path, headers)
            assert answer.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/healthz", headers={"Authorization": ""}).status_code == 200
    page = httpx.get(client.base_url.join("/docs"))  # a browser: no Authorization header
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=/docs")
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert "swagger-ui" in client.get("/docs").text
    assert client.get("/metrics").status_code == 200
    assert "tracker_tasks" in client.get("/metrics").text
    assert client.get("/v1/stats").status_code == 200


def test_an_unregistered_task_s_webhook_registers_it_when_asked(api: API, sqlite_url: str) -> None:
    """With --webhook-registers, the API's signed event for a task nobody registered registers
    it and makes it due; without, it is answered 200 and dropped."""
    from tracker.simulator import send_webhook

    secret = "whsec_YS1sb25nLWVub3VnaC13ZWJob29rLXNlY3JldA=="
    with make_tracker(api, sqlite_url, webhook_secret=Secret(secret)) as tracker:
        for registers in (False, True):
            settings = with_http(tracker.settings, webhook_registers=registers)
            with RunningApp(settings, tracker.database) as url:
                status = send_webhook(
                    f"{url}/webhooks", secret, "video.completed", f"video_hook_{registers}"
                )
            assert status == 200
        assert [task.task_id for task in tracker.tasks()] == ["video_hook_True"]


def test_a_webhook_registers_its_task_under_the_provider_whose_secret_signed_it(
    api: API, sqlite_url: str, tmp_path: Path
) -> None:
    """With a providers file, each provider's own webhook secret names it: an unregistered
    task's event signed by relay-b's secret registers the task under relay-b, one signed by
    `default`'s under default."""
    from tracker.settings.providers import read_providers
    from tracker.simulator import send_webhook

    secrets = {
        "DEFAULT_WEBHOOKS": "whsec_YS1sb25nLWVub3VnaC13ZWJob29rLXNlY3JldA==",
        "RELAY_B_WEBHOOKS": "relay-b-signs-its-webhooks-with-this-0123",
    }
    config = tmp_path / "tracker.toml"
    config.write_text(
        f'[providers.default]\napi_base = "{api.url}"\ntoken_env = "TOKEN"\n'
        'webhook_secret_env = "DEFAULT_WEBHOOKS"\n'
        f'[providers.relay-b]\napi_base = "{api.url}"\ntoken_env = "TOKEN"\n'
        'webhook_secret_env = "RELAY_B_WEBHOOKS"\n'
    )
    providers = read_providers(str(config), {"TOKEN": api.token, **secrets})
    with make_tracker(api, sqlite_url) as tracker:
        settings = with_http(tracker.settings, providers=providers, webhook_registers=True)
        with RunningApp(settings, tracker.database) as url:
            for variable, task_id in (("RELAY_B_WEBHOOKS", "task_b"), ("DEFAULT_WEBHOOKS", "vid")):
                status = send_webhook(
                    f"{url}/webhooks", secrets[variable], "video.completed", task_id
                )
                assert status == 200
            forged = send_webhook(
                f"{url}/webhooks", "nobody-configured-this-secret-0123", "video.completed", "x"
            )
            assert forged == 401
        providers_of = {task.task_id: task.provider for task in tracker.tasks()}
    assert providers_of == {"task_b": "relay-b", "vid": "default"}


def test_a_webhook_signed_for_an_undeclared_default_registers_nothing(
    api: API, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """TRACKER_WEBHOOK_SECRET signs for `default`; with a providers file that does not declare
    it, an unregistered task's event is answered (polling: false) and registers nothing, with a
    warning: no daemon would poll the task."""
    from tracker.simulator import send_webhook

    secret = "whsec_YS1sb25nLWVub3VnaC13ZWJob29rLXNlY3JldA=="
    relay = Provider(name="relay-b", api_base=api.url)
    with make_tracker(api, sqlite_url, webhook_secret=Secret(secret)) as tracker:
        settings = with_http(tracker.settings, providers=(relay,), webhook_registers=True)
        with RunningApp(settings, tracker.database) as url:
            status = send_webhook(f"{url}/webhooks", secret, "video.completed", "video_orphan")
        assert status == 200
        assert tracker.tasks() == []
    assert any(
        "video_orphan: the task is not registered: unknown provider 'default'" in r.message
        for r in caplog.records
    )


def test_a_removal_is_told_to_event_streams(served: Served) -> None:
    """A task removed through the API ends its stream's story too: a snapshot, then
    `finished` with finish_reason removed and its metadata."""
    _tracker, client = served
    client.post("/v1/tasks", json={"ids": ["video_gone"], "metadata": {"order": 7}})
    events, reader = follow_in_background(client, until=2, params={"task_id": "video_gone"})
    assert client.delete("/v1/tasks/video_gone").status_code == 200
    reader.join(10)
    assert [event.event for event in events] == ["snapshot", "finished"]
    assert events[1].data["finish_reason"] == "removed"
    assert events[1].data["metadata"] == {"order": 7}


def test_a_stream_too_far_behind_is_ended_and_its_client_misses_nothing(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that stops reading while events pile up is let go once the server no longer
    keeps what it owes (BACKLOG_BYTES, small here): it reads what it was sent, a comment saying
    so, and the end of the stream; reconnecting with its Last-Event-ID, it gets every later
    event, once."""
    monkeypatch.setattr(feed, "BACKLOG_BYTES", 64 * 1024)
    tracker, client = served
    ids = [f"video_slow_{index:03d}" for index in range(600)]
    # Some 12 kB of metadata in each `finished`: 7 MB in all, more than the kernel holds for
    # one connection (the server's send buffer grows to 4 MiB); the client's small segments
    # and receive buffer still let it read them quickly once it does.
    client.post("/v1/tasks", json={"ids": ids, "metadata": {"pad": "x" * 12_000}})
    window = [
        (socket.SOL_SOCKET, socket.SO_RCVBUF, 65536),
        (socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1024),
    ]
    with (
        httpx.Client(
            base_url=client.base_url,
            headers=AUTH,
            timeout=30,
            transport=httpx.HTTPTransport(socket_options=window),
        ) as slow,
        slow.stream("GET", "/v1/events") as response,
    ):
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")  # the stream is followed from here on
        for start in range(0, len(ids), 60):  # ten reads of the feed, each over the log's bound
            tracker.database.tasks.remove_tasks(ids[start : start + 60], NOW(), channels=())
            time.sleep(0.5)
        first = list(lines)  # only now read, until the server ends the stream
    got = list(events_of(first))
    assert feed.BEHIND.decode().strip() in first
    assert 0 < len(got) < 2 * len(ids)
    rest = read_events(
        client,
        "/v1/events",
        until=lambda events: (
            events[-1].data.get("task_id") == ids[-1] and events[-1].event == "finished"
        ),
        headers={"Last-Event-ID": got[-1].id or ""},
    )
    got += rest
    assert [event.event for event in got] == ["snapshot", "finished"] * len(ids)
    places = [FeedPosition.parse(event.id or "") for event in got if event.event == "finished"]
    assert places == sorted(places) and len(set(places)) == len(ids)  # type: ignore[type-var]


def test_a_stream_with_an_interval_sends_what_came_meanwhile_together(served: Served) -> None:
    """With ?interval=1.5 the first event after a quiet spell goes out at once, and what comes
    in the next 1.5 s waits for the rest to end, then goes out together; every event comes, in
    order. An interval out of range is a 422 naming it."""
    tracker, client = served
    ids = ["video_i1", "video_i2", "video_i3"]
    client.post("/v1/tasks", json={"ids": ids})
    arrivals: list[tuple[float, str, str]] = []
    with client.stream("GET", "/v1/events", params={"interval": 1.5}) as response:
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")
        removed_first = time.monotonic()
        tracker.database.tasks.remove_tasks(ids[:1], NOW(), channels=())
        event = ""
        for line in lines:
            assert time.monotonic() - removed_first < 30, f"only these came: {arrivals}"
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                task_id = json.loads(line.removeprefix("data: "))["task_id"]
                arrivals.append((time.monotonic(), task_id, event))
                if len(arrivals) == 2:  # the first task's snapshot and finished
                    tracker.database.tasks.remove_tasks(ids[1:2], NOW(), channels=())
                    time.sleep(0.3)
                    tracker.database.tasks.remove_tasks(ids[2:], NOW(), channels=())
                if len(arrivals) == 6:
                    break
    assert [(task_id, event) for _, task_id, event in arrivals] == [
        (task_id, event) for task_id in ids for event in ("snapshot", "finished")
    ]
    first, second, third = arrivals[0][0], arrivals[2][0], arrivals[4][0]
    assert first - removed_first < 1.5  # not held back: nothing was sent before it
    assert second - first >= 1.0  # held for the rest of the interval (1.5 s after the send)
    assert third - second < 0.1  # came in the same chunk as the second
    for wrong in ("11", "-1", "soon"):
        problem = client.get("/v1/events", params={"interval": wrong})
        assert problem.status_code == 422
        assert problem.json()["errors"][0]["parameter"] == "interval"
