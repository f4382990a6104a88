"""Providers through the installed command (docs/providers.md): a providers file, tasks
registered for each provider, and the mistakes an operator makes with them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import Run, assert_usage_error
from tests.conftest import API
from tracker.simulator import Simulator, SimulatorServer

RELAY_TOKEN = "sk-relay-token-d41f"


@pytest.fixture
def relay() -> Iterator[API]:
    """A second API, with a key of its own."""
    simulator = Simulator(token=RELAY_TOKEN)
    with SimulatorServer(simulator) as url:
        yield API(simulator, url, RELAY_TOKEN)


def write_config(workdir: Path, api: API, relay: API) -> Path:
    config = workdir / "tracker.toml"
    config.write_text(
        f"""
[providers.default]
api_base = "{api.url}"
token_env = "OPENAI_KEY"

[providers.relay-b]
api_base = "{relay.url}"
token_file = "{workdir / "relay.token"}"
status_path = "/v1/video/query?id={{id}}"
concurrency = 4
""",
        encoding="utf-8",
    )
    (workdir / "relay.token").write_text(RELAY_TOKEN + "\n", encoding="utf-8")
    return config


def test_tasks_of_two_providers_and_one_undeclared(
    tracker: Run, api: API, relay: API, workdir: Path
) -> None:
    """`run --config` polls each task through its provider to the end; beside a task of a
    provider the file does not name, `run --until-done` exits 1 at once with one line naming
    it (it would end as if that task were done); `list` shows a provider column and filters
    by provider; `stats` counts the waiting task under its provider."""
    config = write_config(workdir, api, relay)
    env = {"OPENAI_KEY": api.token, "TRACKER_POLL_INTERVAL": "0.1", "TRACKER_CONFIG": str(config)}
    own = api.simulator.add_video("video_own_key", steps=2)
    relayed = relay.simulator.add_video("sora-2:task_on_relay", steps=2)
    assert tracker("add", own).returncode == 0
    assert tracker("add", "--provider", "relay-b", relayed).returncode == 0
    ran = tracker("run", "--until-done", env=env)
    assert ran.returncode == 0, ran.stderr
    assert RELAY_TOKEN not in ran.stderr and api.token not in ran.stderr

    assert tracker("add", "--provider", "relay-c", "task_nobody_polls").returncode == 0
    refused = tracker("run", "--until-done", env=env)
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "tracker: error: unfinished tasks name the provider 'relay-c', which the configuration "
        "does not declare: they would never be done; declare it, or move the tasks to a "
        "declared provider (docs/providers.md)"
    ]

    table = tracker("list").stdout.splitlines()
    assert table[0].split()[-1] == "provider"
    rows = json.loads(tracker("list", "--provider", "relay-b", "--json").stdout)
    assert [(row["task_id"], row["provider"]) for row in rows] == [(relayed, "relay-b")]
    assert rows[0]["finish_reason"] == "completed"
    assert relay.simulator.queries[relayed] == 4 and api.simulator.polls(relayed) == 0
    unfinished = json.loads(tracker("list", "--unfinished", "--json").stdout)
    assert [(row["task_id"], row["poll_count"]) for row in unfinished] == [("task_nobody_polls", 0)]
    assert "unfinished by provider: 1 relay-c" in tracker("stats").stdout


def test_what_a_providers_file_gets_wrong_stops_the_daemon_in_one_line(
    tracker: Run, api: API, relay: API, workdir: Path
) -> None:
    """An unset token variable, a missing file, an unknown key: exit 2 before anything is
    polled, one line naming the file and the provider, never a token."""
    config = write_config(workdir, api, relay)
    unset = tracker("run", "--config", str(config))
    assert_usage_error(unset, "provider 'default'", "'OPENAI_KEY' is not set")
    missing = tracker("poll", "--config", str(workdir / "nope.toml"))
    assert_usage_error(missing, "nope.toml", "cannot read")
    config.write_text(config.read_text() + 'colour = "blue"\n', encoding="utf-8")
    unknown = tracker("run", env={"OPENAI_KEY": api.token, "TRACKER_CONFIG": str(config)})
    assert_usage_error(unknown, "provider 'relay-b'", "unknown key 'colour'")
    assert RELAY_TOKEN not in unknown.stderr and api.token not in unknown.stderr


def test_a_provider_name_that_cannot_be_one_is_refused(tracker: Run, workdir: Path) -> None:
    """`add --provider` with a space in the name: exit 2, nothing registered (not even a
    database made)."""
    result = tracker("add", "--provider", "relay b", "video_x")
    assert_usage_error(result, "invalid provider 'relay b'")
    assert not (workdir / "tracker.db").exists()


def test_add_given_the_providers_file_takes_only_its_providers(
    tracker: Run, api: API, relay: API, workdir: Path
) -> None:
    """`add --config` (or TRACKER_CONFIG) refuses a provider the file does not declare, which
    no daemon would poll: exit 2 naming the declared ones, nothing registered; the providers'
    tokens are not read, so the variables they name need not be set where tasks are added."""
    config = write_config(workdir, api, relay)
    (workdir / "relay.token").unlink()
    refused = tracker("add", "--config", str(config), "--provider", "relay-c", "video_x")
    assert_usage_error(
        refused, "unknown provider 'relay-c': the providers file declares default, relay-b"
    )
    from_env = tracker(
        "add", "--provider", "relay-c", "video_x", env={"TRACKER_CONFIG": str(config)}
    )
    assert_usage_error(from_env, "unknown provider 'relay-c'")
    assert (
        tracker("add", "--config", str(config), "--provider", "relay-b", "video_y").returncode == 0
    )
    assert tracker("add", "--config", str(config), "video_z").returncode == 0
    rows = json.loads(tracker("list", "--json").stdout)
    assert sorted((row["task_id"], row["provider"]) for row in rows) == [
        ("video_y", "relay-b"),
        ("video_z", "default"),
    ]
