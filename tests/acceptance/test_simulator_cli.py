"""`tracker simulator` as the README's tour uses it: started in one terminal, it says how to
point tracker at it; `add` and `run` in another follow it; Ctrl-C or SIGTERM stops it."""

from __future__ import annotations

import json
import shlex
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import TRACKER, Run, assert_usage_error


@contextmanager
def simulator(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`tracker simulator --port 0 ARGS…` and the lines it printed up to the first blank one
    after its instructions."""
    process = subprocess.Popen(
        [TRACKER, "simulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        while not lines or not lines[-1].startswith("  tracker serve"):
            line = process.stdout.readline()
            assert line, f"it ended early: {process.stderr.read() if process.stderr else ''}"
            lines.append(line.rstrip("\n"))
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def exported(lines: list[str]) -> dict[str, str]:
    """The variables of its `export …` line."""
    line = next(line for line in lines if line.strip().startswith("export "))
    return dict(word.split("=", 1) for word in shlex.split(line)[1:])


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_tracker_follows_the_simulator_s_videos_to_their_ends_and_it_stops_cleanly(
    tracker: Run, workdir: Path, stop: signal.Signals
) -> None:
    """The printed variables (a database of its own among them) and `tracker add` line, then
    `tracker run --until-done`: its videos complete, fail, vanish (not_found), and answer as
    relays do. Ctrl-C or SIGTERM stops it with exit 0 and nothing on stderr."""
    with simulator() as (process, lines):
        env = {**exported(lines), "TRACKER_POLL_INTERVAL": "0.1"}
        assert env["TRACKER_DATABASE_URL"] == "sqlite:///tracker-simulated.db"
        add = next(line for line in lines if line.strip().startswith("tracker add "))
        added = tracker(*shlex.split(add)[1:], env=env)
        assert added.returncode == 0, added.stderr
        ran = tracker("run", "--until-done", env=env, timeout=60)
        assert ran.returncode == 0, ran.stderr
        listed = tracker("list", "--json", env=env)
        process.send_signal(stop)
        assert process.wait(10) == 0
    assert process.stderr is not None and process.stderr.read() == ""
    assert (workdir / "tracker-simulated.db").is_file() and not (workdir / "tracker.db").exists()
    ends = {task["task_id"]: task["finish_reason"] for task in json.loads(listed.stdout)}
    assert ends == {
        "video_completes": "completed",
        "video_fails": "failed",
        "video_vanishes": "not_found",
        "sora-2:task_relay_completes": "completed",
        "sora-2:task_envelope_fails": "failed",
    }


def test_its_address_and_token_are_the_ones_given() -> None:
    """`--host` and `--token`: it listens there, says so, and takes that token only."""
    with simulator("--host", "127.0.0.1", "--token", "my-fake-token") as (process, lines):
        env = exported(lines)
        assert env["TRACKER_API_TOKEN"] == "my-fake-token"
        base = env["TRACKER_API_BASE"]
        assert base.startswith("http://127.0.0.1:") and base in lines[0]
        known = httpx.get(f"{base}/v1/videos/video_completes", headers=bearer("my-fake-token"))
        refused = httpx.get(f"{base}/v1/videos/video_completes", headers=bearer("sim-token"))
        assert (known.status_code, refused.status_code) == (200, 401)
        process.terminate()
        assert process.wait(10) == 0


def test_a_port_in_use_is_one_line_and_exit_2(tracker: Run) -> None:
    """A port another program holds: exit 2 with one line naming it, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = tracker("simulator", "--port", port)
    assert_usage_error(result, f"cannot listen on 127.0.0.1 port {port}: Address already in use")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
