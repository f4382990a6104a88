"""A few hundred tasks through a mix of every fault at once, the server going away mid-run."""

from __future__ import annotations

import asyncio
import random

from tracker import Tracker
from tracker.simulator import Reply, Simulator, SimulatorServer

RUNNING = Reply(video={"status": "in_progress", "progress": "45%"})
FAULTS = {
    "500": Reply(status=500, raw=b'{"error": {"message": "boom", "type": "server_error"}}'),
    "502": Reply(status=502, raw=b"<html>bad gateway</html>"),
    "503": Reply(status=503, raw=b"{}"),
    "503-retry-after": Reply(status=503, raw=b"{}", headers={"Retry-After": "1"}),
    "not-json": Reply(raw=b"<!doctype html>"),
    "not-a-video": Reply(raw=b'{"data": null}'),
    "unknown-status": Reply(video={"status": "MYSTERY"}),
    "404": Reply(status=404, raw=b'{"error": {"message": "not yet", "type": "x"}}'),
    "slow": Reply(video={"status": "in_progress"}, delay=1.0),
    "dropped": Reply(drop=True),
    "huge": Reply(raw=b'{"status": "queued", "pad": "' + b"x" * (1024 * 1024) + b'"}'),
}
RARE = {
    "429": Reply(status=429, raw=b"{}", headers={"Retry-After": "1"}),
    "401": Reply(status=401, raw=b'{"error": {"message": "bad key", "type": "auth"}}'),
}
ENDINGS = {
    "completed": [Reply(video={"status": "SUCCESS", "progress": 100})],
    "failed": [Reply(video={"status": "failed", "error": {"code": "x", "message": "no"}})],
    "not_found": [FAULTS["404"]] * 3,
}


def build(simulator: Simulator, rng: random.Random, count: int) -> dict[str, str]:
    """Register ``count`` scripted videos; return the finish reason each should end with."""
    expected = {}
    for index in range(count):
        script: list[Reply] = []
        for _ in range(rng.randint(0, 4)):
            script.append(rng.choice(list(FAULTS.values())))
            script.append(RUNNING)  # a good answer between faults resets the 404 count
        if index % 100 == 0:
            script += [rng.choice(list(RARE.values())), RUNNING]
        ending = rng.choices(list(ENDINGS), weights=[7, 2, 1])[0]
        video = simulator.script(f"video_soak_{index}", script + ENDINGS[ending])
        expected[video] = ending
    return expected


def test_every_task_ends_right_with_one_snapshot_per_poll(database_url: str) -> None:
    """Under every fault, each task ends in its right state, no request is made twice at once,
    and every answer the server gave is one snapshot."""
    simulator = Simulator(token="sk-soak")
    expected = build(simulator, random.Random(2026), 300)
    first = SimulatorServer(simulator)
    url = first.start()
    tracker = Tracker(
        database_url=database_url,
        api_base=url,
        token="sk-soak",
        poll_interval=0.05,
        request_timeout=0.5,
        concurrency=16,
    )
    tracker.add(list(expected))

    async def scenario() -> None:
        daemon = asyncio.create_task(tracker.run_async(until_done=True))
        await asyncio.sleep(2)
        await asyncio.to_thread(first.stop)  # the API goes away for a second
        await asyncio.sleep(1)
        again = SimulatorServer(simulator, port=first.port)
        await asyncio.to_thread(again.start)
        try:
            await asyncio.wait_for(daemon, 120)
        finally:
            await asyncio.to_thread(again.stop)

    try:
        asyncio.run(scenario())
        tasks = {task.task_id: task for task in tracker.tasks()}
        histories = {task_id: tracker.history(task_id) for task_id in expected}
    finally:
        tracker.close()
    assert {task_id: task.finish_reason for task_id, task in tasks.items()} == expected
    assert simulator.overlaps == 0
    refused_total = 0
    for task_id, history in histories.items():
        answered = simulator.polls(task_id)
        # Every request the server received is one snapshot; requests sent while it was down
        # never reached it and are snapshots without a response.
        unanswered = sum(1 for s in history if s.http_status is None)
        refused_total += sum(
            1 for s in history if str(s.error and s.error.get("message")).startswith("Connect")
        )
        assert answered <= len(history) <= answered + unanswered, [
            (s.http_status, s.error) for s in history
        ]
        assert history[-1].finished and sum(s.finished for s in history) == 1
        assert tasks[task_id].poll_count == len(history)
    assert refused_total > 0  # the outage really happened while tasks were being polled
