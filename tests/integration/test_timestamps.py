"""One timestamp format in every output, on SQLite and PostgreSQL: the API's answers, its
events, and the CLI's JSON write a moment alike, in UTC to the microsecond with Z, even when
its microseconds are naught."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import httpx
import pytest

from tests.conftest import API, make_tracker
from tests.doubles import START, FakeClock
from tests.web import AUTH, TOKEN, follow_in_background
from tracker import Secret
from tracker.cli.main import main
from tracker.testing import RunningApp

FORMAT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_a_moment_is_written_alike_by_the_api_its_events_and_the_cli(
    api: API, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task registered and removed over HTTP at a whole second: its registration and finish
    times, and its snapshot's poll time, are the same text in the task's answer, its history's,
    the events, `list --json`, `history --json` and `export`; `stats --json` and every
    timestamp field of the answers have the same format."""
    clock = FakeClock(START)
    with make_tracker(api, database_url) as tracker:
        settings = replace(tracker.settings, http_port=0, server_tokens=(Secret(TOKEN),))
        with (
            RunningApp(settings, tracker.database, clock=clock) as url,
            httpx.Client(base_url=url, headers=AUTH, timeout=30) as client,
        ):
            client.post("/v1/tasks", json={"ids": ["video_when"]})
            events, reader = follow_in_background(client, until=2)
            assert client.delete("/v1/tasks/video_when").status_code == 200
            reader.join(30)
            task = client.get("/v1/tasks/video_when").json()
            [snapshot] = client.get("/v1/tasks/video_when/snapshots").json()["snapshots"]
            stats = client.get("/v1/stats").json()
    whole = "2026-01-01T12:00:00.000000Z"
    assert (task["registered_at"], task["finished_at"], snapshot["polled_at"]) == (whole,) * 3
    assert [event.event for event in events] == ["snapshot", "finished"]
    assert events[0].data["polled_at"] == whole and events[1].data["finished_at"] == whole
    db = ["--db", database_url]
    [listed] = cli_json(capsys, *db, "list", "--json")  # type: ignore[misc]
    [history] = cli_json(capsys, *db, "history", "video_when", "--json")  # type: ignore[misc]
    capsys.readouterr()
    assert main([*db, "export", "--table", "tasks"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert listed["registered_at"] == listed["finished_at"] == whole
    assert history["polled_at"] == whole and exported["finished_at"] == whole
    cli_stats = cli_json(capsys, *db, "stats", "--json")
    for moment in (stats["at"], cli_stats["at"]):  # type: ignore[index]
        assert FORMAT.fullmatch(moment), moment
    answers = [task, snapshot, listed, history, exported]
    fields = [(name, value) for row in answers for name, value in row.items()]
    for name, value in fields:
        if name.endswith("_at") and value is not None:
            assert FORMAT.fullmatch(value), (name, value)
