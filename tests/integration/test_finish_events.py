"""What a finished task's events carry and who owes them: every finished task (removed ones
included) gets one event per configured channel, carrying its label and metadata; the
--on-finish command gets the daemon's database and its other settings, never a secret.
Through the real daemon, the real simulator, a real receiver and a real database."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.conftest import API, make_tracker, run_until_done
from tests.doubles import Receiver
from tracker import Secret, Tracker
from tracker.simulator import send_webhook
from tracker.store.schema import tasks
from tracker.testing import RunningApp
from tracker.web.auth import CSRF_FIELD

TRACKER = str(Path(sys.executable).with_name("tracker"))
METADATA = {"order": 7, "customer": "ACME", "tags": ["launch", "ü"]}


def set_metadata(tracker: Tracker, task_id: str, metadata: Any) -> None:
    with tracker.database.engine.begin() as connection:
        connection.execute(
            update(tasks).where(tasks.c.task_id == task_id).values(metadata=metadata)
        )


def recorder(tmp_path: Path) -> tuple[tuple[str, ...], Path]:
    """An --on-finish command that appends the TRACKER_* and PG* variables it got, as JSON."""
    out = tmp_path / "events.jsonl"
    script = tmp_path / "record.py"
    script.write_text(
        "import json, os\n"
        f"with open({str(out)!r}, 'a') as out:\n"
        "    out.write(json.dumps({k: v for k, v in os.environ.items() "
        "if k.startswith(('TRACKER_', 'PG'))}) + '\\n')\n"
    )
    return (sys.executable, str(script)), out


def test_events_carry_the_tasks_label_and_metadata(
    api: API, database_url: str, tmp_path: Path
) -> None:
    """A task finished by a poll, one timed out and one removed: each event (POSTed and given
    to --on-finish) carries the task's label and metadata, so a receiver needs no lookup."""
    command, out = recorder(tmp_path)
    receiver = Receiver()
    completed = api.simulator.add_video("video_labelled", steps=1)
    try:
        with make_tracker(api, database_url, notify_url=receiver.url, on_finish=command) as tracker:
            tracker.add([completed], label="launch trailer")
            tracker.add(["video_stale"], label="stale")
            tracker.add(["video_dropped"])
            set_metadata(tracker, completed, METADATA)
            set_metadata(tracker, "video_stale", {"order": 8})
            tracker.remove(["video_dropped"])
            with tracker.database.engine.begin() as connection:  # registered long ago
                connection.execute(
                    update(tasks)
                    .where(tasks.c.task_id == "video_stale")
                    .values(registered_at=datetime.now(UTC) - timedelta(days=2))
                )
            run_until_done(tracker)
    finally:
        receiver.close()
    posted = {event["task_id"]: event for _headers, event in receiver.deliveries()}
    assert {task_id: event["finish_reason"] for task_id, event in posted.items()} == {
        completed: "completed",
        "video_stale": "timed_out",
        "video_dropped": "removed",
    }
    assert (posted[completed]["label"], posted[completed]["metadata"]) == (
        "launch trailer",
        METADATA,
    )
    assert (posted["video_stale"]["label"], posted["video_stale"]["metadata"]) == (
        "stale",
        {"order": 8},
    )
    assert (posted["video_dropped"]["label"], posted["video_dropped"]["metadata"]) == (None, None)
    run = {variables["TRACKER_TASK_ID"]: variables for variables in map(json.loads, lines(out))}
    assert run[completed]["TRACKER_LABEL"] == "launch trailer"
    assert json.loads(run[completed]["TRACKER_METADATA"]) == METADATA
    assert (run["video_dropped"]["TRACKER_LABEL"], run["video_dropped"]["TRACKER_METADATA"]) == (
        "",
        "",
    )


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_a_removed_task_owes_one_event_per_channel_which_a_daemon_delivers(
    api: API, database_url: str, tmp_path: Path
) -> None:
    """`remove` with --notify-url and --on-finish set writes one event per channel with the
    finish; without them, none. A daemon with those channels delivers them."""
    command, out = recorder(tmp_path)
    receiver = Receiver()
    try:
        with make_tracker(api, database_url) as quiet:
            quiet.add(["video_quiet"])
            quiet.remove(["video_quiet"])
            assert quiet.database.follow_ups.events() == []
        with make_tracker(api, database_url, notify_url=receiver.url, on_finish=command) as tracker:
            tracker.add(["video_removed", "video_kept"], label="batch 7")
            result = tracker.remove(["video_removed", "video_quiet"])
            assert (result.removed, result.already_finished) == (["video_removed"], ["video_quiet"])
            owed = tracker.database.follow_ups.events()
            assert sorted(row["channel"] for row in owed) == ["command", "webhook"]
            assert {row["task_id"] for row in owed} == {"video_removed"}
            assert {row["state"] for row in owed} == {"pending"}
            tracker.remove(["video_kept"])
            run_until_done(tracker)
            delivered = tracker.database.follow_ups.events()
    finally:
        receiver.close()
    assert {row["state"] for row in delivered} == {"delivered"}
    posted = [event for _headers, event in receiver.deliveries()]
    assert sorted(event["task_id"] for event in posted) == ["video_kept", "video_removed"]
    [event] = [event for event in posted if event["task_id"] == "video_removed"]
    assert (event["type"], event["finish_reason"], event["label"]) == (
        "task.finished",
        "removed",
        "batch 7",
    )
    assert event["finished_at"] and event["video"] is None
    assert sorted(json.loads(line)["TRACKER_TASK_ID"] for line in lines(out)) == [
        "video_kept",
        "video_removed",
    ]


def test_an_on_finish_hook_can_run_tracker_on_the_daemons_database(
    api: API, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hook running `tracker history "$TRACKER_TASK_ID"` reads the daemon's own database
    (not a fresh ./tracker.db where it runs), gets the daemon's other TRACKER_* settings and
    PG* variables, and none of the secrets."""
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    for name, value in {
        "TRACKER_API_TOKEN": "sk-hidden-token-0123",
        "TRACKER_API_TOKEN_FILE": str(tmp_path / "token"),
        "TRACKER_NOTIFY_SECRET": "whsec_c2VjcmV0LWtleS1mb3ItdGVzdHM=",
        "TRACKER_WEBHOOK_SECRET": "whsec_YS1sb25nLWVub3VnaC13ZWJob29rLXNlY3JldA==",
        "PGPASSWORD": "pg-hidden-password",
        "PGPASSFILE": str(tmp_path / "pgpass"),
        "PGHOST": "db.example",
        "TRACKER_LOG_FORMAT": "json",
    }.items():
        monkeypatch.setenv(name, value)
    database_url = f"sqlite:///{tmp_path / 'daemon.db'}"
    command, out = recorder(tmp_path)
    history = tmp_path / "history.txt"
    hook = (
        "sh",
        "-c",
        f'{TRACKER} history "$TRACKER_TASK_ID" > {history} 2>&1; echo "exit $?" >> {history}; '
        + " ".join(command),
    )
    video = api.simulator.add_video("video_hooked", steps=1)
    with make_tracker(api, database_url, on_finish=hook) as tracker:
        tracker.add([video])
        run_until_done(tracker)
    text = history.read_text()
    assert text.splitlines()[0].split()[:3] == ["polled_at", "http_status", "status"]
    assert "completed" in text and text.strip().endswith("exit 0")
    assert not (work / "tracker.db").exists()
    [variables] = [json.loads(line) for line in lines(out)]
    assert variables["TRACKER_DATABASE_URL"] == database_url
    assert variables["TRACKER_LOG_FORMAT"] == "json" and variables["PGHOST"] == "db.example"
    for hidden in (
        "TRACKER_API_TOKEN",
        "TRACKER_API_TOKEN_FILE",
        "TRACKER_NOTIFY_SECRET",
        "TRACKER_WEBHOOK_SECRET",
        "PGPASSWORD",
        "PGPASSFILE",
    ):
        assert hidden not in variables
    assert "hidden" not in out.read_text() + text
    assert os.environ["TRACKER_API_TOKEN"] == "sk-hidden-token-0123"  # the daemon's, untouched


def test_a_signed_event_that_is_not_a_video_event_is_answered_400(sqlite_url: str) -> None:
    """A correctly signed `response.completed` (or another event type) is answered 400, as
    docs/follow-ups.md says; video.failed is acted on (200)."""
    from dataclasses import replace

    from tracker.settings import settings_from_keywords
    from tracker.store import Database
    from tracker.testing import RunningApp

    key_secret = "whsec_YS1sb25nLWVub3VnaC13ZWJob29rLXNlY3JldA=="
    database = Database.open(sqlite_url)
    settings = settings_from_keywords(None, database_url=sqlite_url, webhook_secret=key_secret)
    with RunningApp(replace(settings, http_port=0), database) as url:
        statuses = [
            send_webhook(f"{url}/webhooks", key_secret, kind, "video_1")
            for kind in ("response.completed", "video.created", "video.failed")
        ]
    database.close()
    assert statuses == [400, 400, 200]


def test_removing_over_http_or_from_the_dashboard_owes_the_same_event(
    api: API, database_url: str
) -> None:
    """`tracker serve` with the same notification settings as the daemon: a task removed with
    DELETE /v1/tasks/{id}, and one removed with the dashboard's button, each owe their event,
    which a daemon with that channel delivers; a serve without them owes none."""
    receiver = Receiver()
    token = "server-token-for-removals-0123"
    with make_tracker(api, database_url, notify_url=receiver.url) as tracker:
        tracker.add(["video_api", "video_page", "video_unowed"], label="gone")
        served = replace(tracker.settings, server_tokens=(Secret(token),), notify_url=receiver.url)
        bare = replace(served, notify_url=None)
        try:
            with RunningApp(bare, tracker.database) as url:
                gone = httpx.delete(
                    f"{url}/v1/tasks/video_unowed", headers={"Authorization": f"Bearer {token}"}
                )
                assert gone.status_code == 200
            with (
                RunningApp(served, tracker.database) as url,
                httpx.Client(base_url=url, timeout=30) as browser,
            ):
                answer = httpx.delete(
                    f"{url}/v1/tasks/video_api", headers={"Authorization": f"Bearer {token}"}
                )
                assert answer.status_code == 200 and answer.json()["removed"] is True
                browser.post("/login", data={"token": token, "next": "/"})
                page = browser.get("/tasks/video_page").text
                [csrf] = set(re.findall(rf'name="{CSRF_FIELD}" value="([^"]+)"', page))
                pressed = browser.post("/tasks/video_page/remove", data={CSRF_FIELD: csrf})
                assert pressed.status_code == 303
            owed = tracker.database.follow_ups.events()
            assert sorted(row["task_id"] for row in owed) == ["video_api", "video_page"]
            run_until_done(tracker)
        finally:
            receiver.close()
    posted = {event["task_id"]: event for _headers, event in receiver.deliveries()}
    assert sorted(posted) == ["video_api", "video_page"]
    assert {event["finish_reason"] for event in posted.values()} == {"removed"}
    assert {event["label"] for event in posted.values()} == {"gone"}
