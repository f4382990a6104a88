"""The installed `tracker` command with proxies (docs/proxies.md): the environment's
variables, --proxy and TRACKER_PROXY, and a password that never reaches the terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import API
from tests.proxy_server import ForwardProxy, unused_port

TRACKER = str(Path(sys.executable).with_name("tracker"))
SECRET = "cli-pr0xy-pa55word"


def tracker(workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TRACKER, *args],
        cwd=workdir,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def guarded() -> Iterator[ForwardProxy]:
    server = ForwardProxy("cli", SECRET)
    with server:
        yield server


def test_poll_takes_the_environment_proxy_and_the_flag_overrides_it(
    api: API, guarded: ForwardProxy, tmp_path: Path
) -> None:
    """HTTP_PROXY with credentials carries `tracker poll`; TRACKER_PROXY wins over it;
    --proxy none goes direct whatever the variables say."""
    video = api.simulator.add_video("video_cli_proxy", steps=10)
    with_password = guarded.url.replace("http://", f"http://cli:{SECRET}@")
    base = {"TRACKER_API_BASE": api.url, "TRACKER_API_TOKEN": api.token}
    assert tracker(tmp_path, "add", video).returncode == 0
    down = f"http://127.0.0.1:{unused_port()}"

    result = tracker(tmp_path, "poll", "--all", **base, HTTP_PROXY=with_password)
    assert (result.returncode, len(guarded.forwarded)) == (0, 1), result.stderr
    result = tracker(
        tmp_path, "poll", "--all", **base, HTTP_PROXY=down, TRACKER_PROXY=with_password
    )
    assert (result.returncode, len(guarded.forwarded)) == (0, 2), result.stderr
    result = tracker(tmp_path, "poll", "--all", "--proxy", "none", **base, HTTP_PROXY=down)
    assert (result.returncode, len(guarded.forwarded)) == (0, 2), result.stderr
    history = json.loads(tracker(tmp_path, "history", video, "--json").stdout)
    assert [snapshot["error"] for snapshot in history] == [None] * 3
    assert api.simulator.polls(video) == 3


def test_a_refusing_proxy_is_reported_without_its_password(
    api: API, guarded: ForwardProxy, tmp_path: Path
) -> None:
    """A 407 is logged as the proxy refusing, by host and port; an unusable proxy URL is
    exit 2 naming the flag; the password shows in neither, debug output included."""
    video = api.simulator.add_video("video_cli_refused", steps=10)
    wrong = guarded.url.replace("http://", f"http://cli:{SECRET}-wrong@")
    base = {"TRACKER_API_BASE": api.url, "TRACKER_API_TOKEN": api.token}
    assert tracker(tmp_path, "add", video).returncode == 0
    result = tracker(tmp_path, "-vv", "poll", **base, HTTPS_PROXY=wrong, HTTP_PROXY=wrong)
    assert result.returncode == 0
    assert f"the proxy {guarded.url} refused (407 Proxy Authentication Required)" in result.stderr
    assert SECRET not in result.stderr + result.stdout
    socks = tracker(tmp_path, "poll", "--proxy", f"socks5://cli:{SECRET}@127.0.0.1:1080", **base)
    assert socks.returncode == 2
    assert "--proxy 'socks5://***@127.0.0.1:1080': SOCKS proxies are not supported" in (
        socks.stderr
    )
    assert SECRET not in socks.stderr


def test_a_proxy_variable_tracker_cannot_use_stops_only_the_commands_that_would_use_it(
    api: API, tmp_path: Path
) -> None:
    """ALL_PROXY=socks5://… in the shell: `tracker list` works, `tracker poll` exits 2 naming
    the variable (without its password) and how to ignore it; --proxy none polls direct."""
    video = api.simulator.add_video("video_cli_socks", steps=10)
    socks = {"ALL_PROXY": f"socks5://cli:{SECRET}@127.0.0.1:1080"}
    base = {"TRACKER_API_BASE": api.url, "TRACKER_API_TOKEN": api.token, **socks}
    assert tracker(tmp_path, "add", video, **socks).returncode == 0
    assert tracker(tmp_path, "list", **socks).returncode == 0
    refused = tracker(tmp_path, "poll", **base)
    assert refused.returncode == 2
    assert "ALL_PROXY 'socks5://***@127.0.0.1:1080': SOCKS proxies are not supported" in (
        refused.stderr
    )
    assert "TRACKER_PROXY=none" in refused.stderr and SECRET not in refused.stderr
    assert api.simulator.polls(video) == 0
    assert tracker(tmp_path, "poll", "--proxy", "none", **base).returncode == 0
    assert api.simulator.polls(video) == 1
