"""tracker.client's actions and export against a real tracker server (uvicorn on 127.0.0.1) on
real SQLite and PostgreSQL (docs/client.md, Acting on tasks and Export): each method, sync and
async, and the refusals each is answered with."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import API
from tests.integration.test_tracker_client import polling, serving
from tests.web import TOKEN
from tracker.client import (
    AsyncClient,
    BulkResult,
    Conflict,
    Filter,
    FinishReason,
    InvalidRequest,
    NotFound,
    RefusedTask,
    Snapshot,
    Task,
)


def test_poll_now_and_reopen_return_the_task_and_refuse_what_its_state_does_not_take(
    api: API,
    database_url: str,
) -> None:
    """poll_now makes a task due (Conflict once it has finished); reopen watches a removed task
    again (Conflict while it is unfinished); an unknown task is NotFound for both."""
    with serving(api, database_url) as served:
        client = served.client
        client.add(["video_act"], label="acts")
        polled_now = client.poll_now("video_act")
        assert isinstance(polled_now, Task) and polled_now.task_id == "video_act"
        assert not polled_now.finished and polled_now.label == "acts"
        assert polled_now.next_poll_at <= datetime.now(UTC) + timedelta(seconds=1)
        with pytest.raises(Conflict) as unfinished:
            client.reopen("video_act")
        assert unfinished.value.status == 409 and unfinished.value.detail
        assert str(unfinished.value).startswith("POST /v1/tasks/video_act/reopen: 409")
        client.remove("video_act")
        with pytest.raises(Conflict) as finished:
            client.poll_now("video_act")
        assert finished.value.detail is not None and "removed" in finished.value.detail
        assert finished.value.refused == (RefusedTask("video_act", "finished", "removed"),)
        assert unfinished.value.refused == (RefusedTask("video_act", "unfinished", None),)
        reopened = client.reopen("video_act")
        assert not reopened.finished and reopened.finish_reason is None
        assert reopened.reopened_at is not None and reopened.reopened_at.tzinfo is not None
        assert client.task("video_act").reopened_at == reopened.reopened_at
        for call in (lambda: client.poll_now("video_nope"), lambda: client.reopen("video_nope")):
            with pytest.raises(NotFound) as unknown:
                call()
            assert unknown.value.status == 404 and "video_nope" in str(unknown.value)


def test_a_completed_task_is_not_reopened(api: API, database_url: str) -> None:
    """A completed video has nothing left to watch: reopen and poll_now are both a Conflict,
    and the task stays as it was."""
    with polling(api, database_url) as polled:
        client = polled.client
        video = api.simulator.add_video("video_done", steps=2)
        client.add([video])
        done = client.wait(video, timeout=60)
        assert done.finish_reason is FinishReason.COMPLETED
        for call in (lambda: client.reopen(video), lambda: client.poll_now(video)):
            with pytest.raises(Conflict) as refused:
                call()
            assert refused.value.detail is not None and "completed" in refused.value.detail
        assert client.task(video) == done


def test_bulk_actions_by_ids_and_by_filter_count_what_they_matched_and_changed(
    api: API,
    database_url: str,
) -> None:
    """By IDs (unknown ones not matched, each sent once) or by a Filter (Filter() is every
    task): the counts the server gives; a filter criterion bulk does not take, and a bad ID, are
    InvalidRequest naming the field; no IDs, no call."""
    with serving(api, database_url) as served:
        client = served.client
        client.add([f"video_b{i}" for i in range(6)], label="bulk")
        client.add(["video_other"], label="other")
        removed = client.bulk_remove(["video_b0", "video_b1", "video_b1", "video_unknown"])
        assert removed == BulkResult(matched=2, changed=2)
        assert client.task("video_b0").finish_reason is FinishReason.REMOVED
        assert client.bulk_poll(Filter(label="bulk")) == BulkResult(matched=6, changed=4)
        assert client.bulk_reopen(Filter(label="bulk", finished=True)) == BulkResult(2, 2)
        assert not client.task("video_b1").finished
        assert client.bulk_remove("video_b2") == BulkResult(1, 1)
        assert client.bulk_remove(Filter(prefix="video_b", finished=False)) == BulkResult(5, 5)
        assert client.bulk_poll(Filter()) == BulkResult(matched=7, changed=1)
        assert client.bulk_reopen([]) == BulkResult(0, 0)
        with pytest.raises(InvalidRequest) as criterion:
            client.bulk_poll(Filter(finish_reason=FinishReason.FAILED))
        assert [e.pointer for e in criterion.value.errors] == ["/filter/finish_reason"]
        with pytest.raises(InvalidRequest) as bad_id:
            client.bulk_reopen(["video_b0", "a/b"])
        assert [e.pointer for e in bad_id.value.errors] == ["/ids/1"]
        assert bad_id.value.status == 422 and client.task("video_b0").finished


def test_export_streams_typed_rows_and_the_bytes_tracker_export_writes(
    api: API, database_url: str
) -> None:
    """export_tasks and export_snapshots give the rows of the tasks the Filter selects as
    Task and Snapshot, oldest first; export_bytes gives CSV or JSON lines as the server writes
    them; since keeps the rows since then; a moment or a reason that is none is InvalidRequest
    naming the parameter."""
    with serving(api, database_url) as served:
        tracker, client = served.tracker, served.client
        client.add(["video_e1", "video_e2"], label="export", metadata={"order": "A-1"})
        client.add(["video_e3"], label="not exported")
        client.remove("video_e2")  # a snapshot of its own
        client.remove("video_e3")
        tasks = list(client.export_tasks(Filter(label="export")))
        assert [task.task_id for task in tasks] == ["video_e1", "video_e2"]
        assert all(isinstance(task, Task) for task in tasks) and tasks[0].metadata == {
            "order": "A-1"
        }
        assert tasks[1].finish_reason is FinishReason.REMOVED and tasks[1].finished_at is not None
        snapshots = list(client.export_snapshots(Filter(label="export")))
        assert [type(s) for s in snapshots] == [Snapshot]
        assert snapshots[0].task_id == "video_e2" and snapshots[0].finished
        assert snapshots[0] == list(client.snapshots("video_e2"))[-1]
        removed = Filter(finish_reason=FinishReason.REMOVED)
        assert [s.task_id for s in client.export_snapshots(removed)] == ["video_e2", "video_e3"]
        assert [t.task_id for t in client.export_tasks(since="1h")] == [
            "video_e1",
            "video_e2",
            "video_e3",
        ]
        later = datetime.now(UTC) + timedelta(hours=1)
        assert list(client.export_tasks(since=later)) == []
        assert list(client.export_snapshots(since=later.replace(tzinfo=None))) == []
        text = b"".join(client.export_bytes("tasks", "csv", Filter(label="export"))).decode()
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [row["task_id"] for row in rows] == ["video_e1", "video_e2"]
        assert json.loads(rows[0]["metadata"]) == {"order": "A-1"}
        lines = b"".join(client.export_bytes("snapshots", "jsonl", Filter(prefix="video_e3")))
        assert [json.loads(line)["task_id"] for line in lines.splitlines()] == ["video_e3"]
        assert len(tracker.history("video_e3")) == 1
        with pytest.raises(InvalidRequest) as moment:
            list(client.export_tasks(since="yesterday"))
        assert [e.parameter for e in moment.value.errors] == ["since"]
        with pytest.raises(InvalidRequest) as reason:
            next(client.export_snapshots(Filter(finish_reason="vanished")))
        assert [e.parameter for e in reason.value.errors] == ["finish_reason"]


def test_the_async_client_acts_and_exports(api: API, database_url: str) -> None:
    """AsyncClient: the same methods awaited (the exports iterated with async for), with the
    same answers and the same refusals."""
    with serving(api, database_url) as served:

        async def main() -> None:
            async with AsyncClient(served.url, token=TOKEN) as client:
                await client.add(["video_a1", "video_a2", "video_a3"], label="async")
                assert (await client.poll_now("video_a1")).task_id == "video_a1"
                assert (await client.bulk_remove(["video_a1", "video_nope"])) == BulkResult(1, 1)
                with pytest.raises(Conflict):
                    await client.poll_now("video_a1")
                assert (await client.reopen("video_a1")).reopened_at is not None
                with pytest.raises(Conflict):
                    await client.reopen("video_a1")
                with pytest.raises(NotFound):
                    await client.reopen("video_nope")
                assert await client.bulk_poll(Filter(label="async")) == BulkResult(3, 3)
                assert await client.bulk_remove(Filter(prefix="video_a")) == BulkResult(3, 3)
                assert await client.bulk_reopen(["video_a2"]) == BulkResult(1, 1)
                with pytest.raises(InvalidRequest) as invalid:
                    await client.bulk_remove(Filter(error="timeout"))
                assert [e.pointer for e in invalid.value.errors] == ["/filter/error"]
                tasks = [task.task_id async for task in client.export_tasks(Filter(label="async"))]
                assert tasks == ["video_a1", "video_a2", "video_a3"]
                snapshots = [s async for s in client.export_snapshots(Filter(prefix="video_a3"))]
                assert [(s.task_id, s.finished) for s in snapshots] == [("video_a3", True)]
                pieces = [p async for p in client.export_bytes("tasks", "csv", since="1h")]
                assert b"".join(pieces).decode().splitlines()[0].startswith("task_id,")
                with pytest.raises(InvalidRequest) as moment:
                    await anext(client.export_snapshots(since="soon"))
                assert [e.parameter for e in moment.value.errors] == ["since"]

        asyncio.run(main())


def test_the_documented_examples_of_acting_and_exporting_run_as_written(
    api: API,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """docs/client.md's examples under "Acting on tasks" and "Export", as written, one after
    the other: the refusal is printed, the counts are as the example asserts, and the CSV
    file holds every snapshot of the tasks labelled launch."""
    with serving(api, database_url) as served:
        text = (Path(__file__).resolve().parents[2] / "docs" / "client.md").read_text()
        acting, exporting = (
            text.split(f"## {title}\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
            for title in ("Acting on tasks", "Export")
        )
        monkeypatch.setenv("TRACKER_URL", served.url)
        monkeypatch.setenv("TRACKER_TOKEN", TOKEN)
        monkeypatch.chdir(tmp_path)
        scope: dict[str, object] = {"__name__": "example"}
        exec(compile(acting, "docs/client.md", "exec"), scope)
        exec(compile(exporting, "docs/client.md", "exec"), scope)
        printed = capsys.readouterr().out
        assert printed.startswith("task 'video_2' has finished (removed)")
        finished = {task.task_id: task.finished for task in served.client.tasks(label="launch")}
        assert finished == {"video_1": False, "video_2": True, "video_3": False}
        with (tmp_path / "snapshots.csv").open(newline="") as file:
            written = [row["task_id"] for row in csv.DictReader(file)]
        history = [s.task_id for i in (1, 2, 3) for s in served.tracker.history(f"video_{i}")]
        assert sorted(written) == sorted(history) and len(written) == 4
