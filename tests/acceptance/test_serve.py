"""`tracker serve` as users run it: a process of its own, on the loopback address unless it has
tokens, several of them on one PostgreSQL database, stopped cleanly by SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.web import AUTH, TOKEN

TRACKER = str(Path(sys.executable).with_name("tracker"))
_LISTENING = re.compile(r"HTTP service on (http://[0-9.]+:[0-9]+)/")


@contextmanager
def serving(
    database_url: str, *args: str, **env: str
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`tracker serve --port 0 ARGS…` until the block ends; its URL (read from its log)."""
    process = subprocess.Popen(
        [TRACKER, "--db", database_url, "serve", "--port", "0", *args],
        env={**os.environ, "TRACKER_SERVER_TOKENS": TOKEN, **env},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    url = None
    deadline = time.monotonic() + 30
    while url is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        if found := _LISTENING.search(line):
            url = found[1]
    assert url is not None, "tracker serve did not say where it listens"
    threading.Thread(target=process.stderr.read, daemon=True).start()
    try:
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(15)


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["serve", "--host", "0.0.0.0"], {}, "--host '0.0.0.0'"),
        (["serve", "--http-host", "0.0.0.0"], {}, "--http-host '0.0.0.0'"),
        (["serve"], {"TRACKER_HTTP_HOST": "0.0.0.0"}, "TRACKER_HTTP_HOST '0.0.0.0'"),
        (
            ["run", "--metrics-port", "0", "--metrics-host", "0.0.0.0"],
            {"TRACKER_API_TOKEN": "sk-test-0123456789"},
            "--metrics-host '0.0.0.0'",
        ),
    ],
)
def test_without_a_token_it_refuses_to_listen_beyond_the_loopback(
    tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    """Asked to listen on every interface with no server token, `serve` (or `run`) exits 2
    with one line saying why, naming the address as the user gave it: the flag typed (`--host`
    or `--http-host`) or the variable."""
    result = subprocess.run(
        [TRACKER, "--db", f"sqlite:///{tmp_path / 't.db'}", *args],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tracker: error: {named}: without a server token ")
    assert "TRACKER_SERVER_TOKENS" in lines[0] and "loopback" in lines[0]
    assert "-port" not in lines[0]


def test_two_servers_on_one_postgresql_database_serve_the_same_tasks(postgres_url: str) -> None:
    """A task registered through one `tracker serve` is read, and removed, through another."""
    with serving(postgres_url) as (first, _), serving(postgres_url) as (second, _):
        created = httpx.post(f"{first}/v1/tasks", json={"ids": ["video_shared"]}, headers=AUTH)
        assert created.status_code == 201
        seen = httpx.get(f"{second}/v1/tasks/video_shared", headers=AUTH)
        assert seen.status_code == 200 and seen.json()["task_id"] == "video_shared"
        removed = httpx.delete(f"{second}/v1/tasks/video_shared", headers=AUTH).json()
        assert removed["removed"] is True
        again = httpx.get(f"{first}/v1/tasks/video_shared", headers=AUTH).json()
        assert again["finish_reason"] == "removed"


def test_sigterm_ends_open_streams_and_exits_0_within_the_budget(tmp_path: Path) -> None:
    """With an event stream open, SIGTERM makes `serve` end the stream cleanly and exit 0
    within a few seconds."""
    with serving(f"sqlite:///{tmp_path / 't.db'}") as (url, process):
        ended = threading.Event()

        def follow() -> None:
            with httpx.stream("GET", f"{url}/v1/events", headers=AUTH, timeout=30) as response:
                for _ in response.iter_lines():
                    pass
            ended.set()

        threading.Thread(target=follow, daemon=True).start()
        time.sleep(0.5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(15)
        took = time.monotonic() - started
        assert ended.wait(5), "the event stream was not ended"
    assert code == 0
    assert took < 5.0


def test_given_the_providers_file_it_takes_only_its_providers(tmp_path: Path) -> None:
    """`serve --config` (or TRACKER_CONFIG) reads the daemons' providers file for its names,
    not their tokens (unset here): a task of another provider is refused with 422 naming
    `provider`, one of its own registered. A file it cannot use stops it: exit 2, one line."""
    config = tmp_path / "providers.toml"
    config.write_text(
        '[providers.relay-b]\napi_base = "https://relay-b.example"\ntoken_env = "RELAY_B_TOKEN"\n'
    )
    database_url = f"sqlite:///{tmp_path / 't.db'}"
    assert "RELAY_B_TOKEN" not in os.environ
    answers = []
    for args, env in ((("--config", str(config)), {}), ((), {"TRACKER_CONFIG": str(config)})):
        with serving(database_url, *args, **env) as (url, _):
            answers += [
                httpx.post(f"{url}/v1/tasks", json={"ids": ["v1"], "provider": name}, headers=AUTH)
                for name in ("relay-c", "relay-b")
            ]
    assert [answer.status_code for answer in answers] == [422, 201] * 2
    assert answers[0].json()["errors"][0]["pointer"] == "/provider"
    config.write_text("[providers.relay-b]\n")
    result = subprocess.run(
        [TRACKER, "--db", database_url, "serve", "--port", "0", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "api_base is missing" in result.stderr
