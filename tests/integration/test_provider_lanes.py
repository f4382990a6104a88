"""Several providers in one daemon (docs/providers.md): each a simulated API of its own on
127.0.0.1 with its own token, declared in a providers file."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.proxy_server import ForwardProxy
from tracker import Tracker
from tracker.errors import ConfigError, UndeclaredProviderError
from tracker.simulator import Reply, Simulator, SimulatorServer
from tracker.store.schema import tasks

TOKEN_A = "sk-provider-a-51d2"
TOKEN_B = "sk-provider-b-9e07"


class Provider:
    def __init__(self, name: str, simulator: Simulator, url: str) -> None:
        self.name = name
        self.simulator = simulator
        self.url = url


@pytest.fixture
def relays(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Provider, Provider]]:
    """Two APIs, each refusing the other's token; their tokens in the variables the file
    names."""
    monkeypatch.setenv("RELAY_A_TOKEN", TOKEN_A)
    monkeypatch.setenv("RELAY_B_TOKEN", TOKEN_B)
    a, b = Simulator(token=TOKEN_A), Simulator(token=TOKEN_B)
    with SimulatorServer(a) as url_a, SimulatorServer(b) as url_b:
        yield Provider("relay-a", a, url_a), Provider("relay-b", b, url_b)


def tracker_on(
    tmp_path: Path, relays: tuple[Provider, Provider], extra: str = "", **settings: object
) -> Tracker:
    a, b = relays
    config = tmp_path / "tracker.toml"
    config.write_text(
        f"""
[providers.relay-a]
api_base = "{a.url}"
token_env = "RELAY_A_TOKEN"
{extra}

[providers.relay-b]
api_base = "{b.url}"
token_env = "RELAY_B_TOKEN"
status_path = "/v1/video/query?id={{id}}"
""",
        encoding="utf-8",
    )
    return Tracker(
        database_url=f"sqlite:///{tmp_path / 'tracker.db'}",
        config=str(config),
        poll_interval=0.1,
        request_timeout=5,
        **settings,
    )


def registered_elsewhere(tracker: Tracker, task_ids: list[str], provider: str) -> None:
    """Tasks of ``provider`` registered by a process without this tracker's providers file
    (this one's `add` refuses a provider the file does not declare)."""
    tracker.database.tasks.add_tasks(task_ids, None, datetime.now(UTC), provider=provider)


def run_while(tracker: Tracker, going: Callable[[], bool], timeout: float = 30) -> float:
    """The daemon, stopped once ``going`` turns false; how long that took."""

    async def scenario() -> float:
        stop = asyncio.Event()
        daemon = asyncio.create_task(tracker.run_async(stop=stop))
        started = time.monotonic()
        try:
            while going():
                assert time.monotonic() - started < timeout, "the daemon did not get there"
                assert not daemon.done(), "the daemon stopped"
                await asyncio.sleep(0.05)
            return time.monotonic() - started
        finally:
            stop.set()
            await daemon

    return asyncio.run(scenario())


def test_each_task_is_polled_at_its_providers_api_with_its_key(
    tmp_path: Path, relays: tuple[Provider, Provider]
) -> None:
    """A task of relay-a is asked of relay-a with relay-a's token (the other API would refuse
    it), and one of relay-b at relay-b's own status path; both finish."""
    a, b = relays
    video_a = a.simulator.add_video("video_on_a", steps=2)
    video_b = b.simulator.add_video("sora-2:task_on_b", steps=2)
    with tracker_on(tmp_path, relays) as tracker:
        tracker.add([video_a], provider="relay-a")
        tracker.add([video_b], provider="relay-b")
        tracker.run(until_done=True)
        tasks = {task.task_id: task for task in tracker.tasks()}
    assert tasks[video_a].finish_reason == tasks[video_b].finish_reason == "completed"
    assert tasks[video_a].provider == "relay-a" and tasks[video_b].provider == "relay-b"
    assert a.simulator.polls(video_a) >= 3 and a.simulator.polls(video_b) == 0
    assert b.simulator.queries[video_b] >= 3 and b.simulator.polls(video_a) == 0


def test_a_rate_limit_pauses_only_its_own_providers_tasks(
    tmp_path: Path, relays: tuple[Provider, Provider]
) -> None:
    """relay-a answers 429 with a minute's Retry-After: its tasks wait, stored as relay-a's
    pause, while relay-b's tasks are polled to the end meanwhile."""
    a, b = relays
    limited = [
        a.simulator.script(f"video_limited_{n}", [Reply(429, headers={"Retry-After": "60"})])
        for n in range(3)
    ]
    moving = [b.simulator.add_video(f"video_moving_{n}", steps=4) for n in range(5)]
    with tracker_on(tmp_path, relays) as tracker:
        tracker.add(limited, provider="relay-a")
        tracker.add(moving, provider="relay-b")

        def relay_b_unfinished() -> bool:
            return tracker.stats().unfinished_by_provider.get("relay-b", 0) > 0

        run_while(tracker, relay_b_unfinished)
        stats = tracker.stats()
        [pause] = tracker.pauses()
    assert pause.provider == "relay-a" and pause.reason == "rate_limited"
    assert stats.unfinished_by_provider == {"relay-a": 3}
    # The three went out at once; the first 429 paused the rest of relay-a's work.
    assert sum(a.simulator.polls(video) for video in limited) <= 3
    assert all(b.simulator.polls(video) >= 5 for video in moving)


def test_a_slow_provider_keeps_to_its_own_requests_in_flight(
    tmp_path: Path, relays: tuple[Provider, Provider]
) -> None:
    """relay-a holds every answer two seconds and may have two requests in flight: its
    twenty tasks wait their turn, and relay-b's tasks are polled to the end meanwhile, each
    at its interval, as if relay-a were not there."""
    a, b = relays
    slow = [
        a.simulator.script(f"video_slow_{n}", [Reply(video={"status": "queued"}, delay=2.0)])
        for n in range(20)
    ]
    fast = [b.simulator.add_video(f"video_fast_{n}", steps=5) for n in range(10)]
    with tracker_on(tmp_path, relays, extra="concurrency = 2", concurrency=4) as tracker:
        tracker.add(slow, provider="relay-a")
        tracker.add(fast, provider="relay-b")

        def relay_b_unfinished() -> bool:
            return tracker.stats().unfinished_by_provider.get("relay-b", 0) > 0

        took = run_while(tracker, relay_b_unfinished)
    # Seven polls each at 0.1 s: well within two seconds, the time of one slow answer.
    assert took < 2.0
    assert sum(a.simulator.polls(video) for video in slow) <= 2
    assert all(b.simulator.polls(video) == 7 for video in fast)


def test_tasks_of_an_undeclared_provider_wait_and_are_named_once(
    tmp_path: Path, relays: tuple[Provider, Provider], caplog: pytest.LogCaptureFixture
) -> None:
    """A task naming a provider the file does not declare is never polled, nor given up past
    give-up-after; one ERROR line names the provider; stats counts its task."""
    a, _ = relays
    video = a.simulator.add_video("video_of_nobody", steps=1)
    caplog.set_level(logging.ERROR)
    with tracker_on(tmp_path, relays, give_up_after="1s") as tracker:
        registered_elsewhere(tracker, [video], "relay-c")
        started = time.monotonic()
        run_while(tracker, lambda: time.monotonic() - started < 2.5)
        [task] = tracker.tasks()
        stats = tracker.stats()
    assert not task.finished and task.poll_count == 0
    assert a.simulator.polls(video) == 0
    assert stats.unfinished_by_provider == {"relay-c": 1}
    named = [r for r in caplog.records if r.levelno == logging.ERROR and "relay-c" in r.message]
    assert len(named) == 1


def test_until_done_refuses_to_start_beside_tasks_of_an_undeclared_provider(
    tmp_path: Path, relays: tuple[Provider, Provider]
) -> None:
    """`run --until-done` with an unfinished task of a provider the file does not declare
    would end as if done while that task waits for ever: it raises UndeclaredProviderError
    naming the provider before it polls anything."""
    a, _ = relays
    video = a.simulator.add_video("video_declared", steps=1)
    with tracker_on(tmp_path, relays) as tracker:
        tracker.add([video], provider="relay-a")
        registered_elsewhere(tracker, ["task_of_nobody"], "relay-c")
        with pytest.raises(UndeclaredProviderError, match="provider 'relay-c'"):
            tracker.run(until_done=True)
        assert {task.task_id: task.poll_count for task in tracker.tasks()} == {
            video: 0,
            "task_of_nobody": 0,
        }
    assert a.simulator.polls(video) == 0


def test_until_done_ends_in_an_error_when_such_a_task_came_while_it_ran(
    tmp_path: Path, relays: tuple[Provider, Provider]
) -> None:
    """A task of an undeclared provider registered while `run --until-done` runs: the tasks
    it polls are done, then it raises UndeclaredProviderError naming the provider instead of
    returning as if everything were."""
    a, _ = relays
    video = a.simulator.add_video("video_declared", steps=3)
    with tracker_on(tmp_path, relays) as tracker:
        tracker.add([video], provider="relay-a")

        async def scenario() -> None:
            daemon = asyncio.create_task(tracker.run_async(until_done=True))
            while a.simulator.polls(video) == 0:
                assert not daemon.done(), "the daemon stopped"
                await asyncio.sleep(0.02)
            await asyncio.to_thread(registered_elsewhere, tracker, ["task_of_nobody"], "relay-c")
            await asyncio.wait_for(daemon, 30)

        with pytest.raises(UndeclaredProviderError, match="provider 'relay-c'"):
            asyncio.run(scenario())
        finished = {task.task_id: task.finish_reason for task in tracker.tasks()}
    assert finished == {video: "completed", "task_of_nobody": None}


def test_a_tasks_files_come_from_its_own_provider(
    tmp_path: Path, relays: tuple[Provider, Provider]
) -> None:
    """With downloads on, each completed task's video is fetched from the API that made it,
    with that API's token."""
    a, b = relays
    video_a = a.simulator.add_video("video_file_a", steps=1)
    video_b = b.simulator.add_video("video_file_b", steps=1)
    directory = tmp_path / "videos"
    with tracker_on(tmp_path, relays, download_dir=str(directory)) as tracker:
        tracker.add([video_a], provider="relay-a")
        tracker.add([video_b], provider="relay-b")
        tracker.run(until_done=True)
        downloads = {row.task_id: row for row in tracker.database.follow_ups.downloads()}
    assert downloads[video_a].state == downloads[video_b].state == "done"
    assert a.simulator.downloads == {(video_a, "video"): 1}
    assert b.simulator.downloads == {(video_b, "video"): 1}


def test_a_providers_own_proxy_setting_wins_over_the_daemons(
    tmp_path: Path, relays: tuple[Provider, Provider]
) -> None:
    """The daemon's proxy carries the requests of a provider that sets none; a provider's
    `proxy = "none"` sends its own direct."""
    a, b = relays
    direct = a.simulator.add_video("video_direct", steps=1)
    proxied = b.simulator.add_video("video_proxied", steps=1)
    proxy = ForwardProxy()
    with proxy, tracker_on(tmp_path, relays, extra='proxy = "none"', proxy=proxy.url) as tracker:
        tracker.add([direct], provider="relay-a")
        tracker.add([proxied], provider="relay-b")
        tracker.run(until_done=True)
        assert {task.finish_reason for task in tracker.tasks()} == {"completed"}
    targets = {target for _, target in proxy.forwarded}
    assert f"{b.url}/v1/video/query?id={proxied}" in targets
    assert not any(a.url in target for target in targets)


def test_downloading_a_task_of_an_undeclared_provider_is_refused_at_once(
    tmp_path: Path, relays: tuple[Provider, Provider]
) -> None:
    """`tracker download ID` for a completed task whose provider the file does not declare is
    a ConfigError naming it, not an hour of retries."""
    with tracker_on(tmp_path, relays) as tracker:
        registered_elsewhere(tracker, ["video_elsewhere"], "relay-c")
        with tracker.database.engine.begin() as connection:
            connection.execute(
                update(tasks).values(finished=True, finish_reason="completed", status="completed")
            )
        with pytest.raises(ConfigError, match="'relay-c'"):
            tracker.download("video_elsewhere", directory=str(tmp_path / "videos"))
