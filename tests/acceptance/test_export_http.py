"""``GET /v1/export`` from `tracker serve` as users run it: a few hundred thousand snapshots
streamed in flat memory, the same bytes as `tracker export`, the filters of ``GET /v1/tasks``,
and bad parameters named (docs/http-api.md, Export)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.acceptance.test_serve import TRACKER, serving
from tests.web import AUTH

SNAPSHOTS = 300_000
TASKS = 1000
# Far below what the rows take held at once (over 300 MB as Python objects), above what the
# server's own memory moves by while it serves.
GROWTH_ALLOWED = 60 * 2**20
BODY = json.dumps({"id": "video", "object": "video", "status": "in_progress", "note": "x" * 150})


def peak_memory(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc")


def filled(directory: Path) -> str:
    """A database of TASKS tasks (every other one labelled "odd") and SNAPSHOTS snapshots."""
    url = f"sqlite:///{directory / 'tracker.db'}"
    subprocess.run([TRACKER, "--db", url, "db", "upgrade"], check=True, capture_output=True)
    with sqlite3.connect(directory / "tracker.db") as connection:
        connection.executemany(
            "INSERT INTO tasks (task_id, label, registered_at, next_poll_at) VALUES (?, ?, ?, ?)",
            (
                (
                    f"video_{i:06d}",
                    "odd" if i % 2 else None,
                    f"2026-03-01 08:{i // 60 % 60:02d}:{i % 60:02d}.000000",
                    "2026-03-01",
                )
                for i in range(TASKS)
            ),
        )
        connection.executemany(
            "INSERT INTO snapshots (task_id, polled_at, http_status, status, progress, body,"
            " latency_ms) VALUES (?, ?, 200, 'in_progress', ?, ?, 12.5)",
            (
                (
                    f"video_{i % TASKS:06d}",
                    f"2026-03-02 {i // 36000:02d}:00:00.000000",
                    i % 100,
                    BODY,
                )
                for i in range(SNAPSHOTS)
            ),
        )
    return url


@pytest.mark.slow
def test_300_000_snapshots_stream_in_flat_memory_as_tracker_export_writes_them(
    tmp_path: Path,
) -> None:
    url = filled(tmp_path)
    cli = subprocess.run(
        [TRACKER, "--db", url, "export", "--table", "snapshots", "--format", "jsonl"],
        capture_output=True,
        check=True,
    ).stdout
    with serving(url) as (base, server), httpx.Client(base_url=base, headers=AUTH) as client:
        before = peak_memory(server.pid)
        digest = hashlib.sha256()
        size = pieces = 0
        with client.stream("GET", "/v1/export", params={"format": "jsonl"}, timeout=300) as answer:
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/x-ndjson"
            disposition = answer.headers["content-disposition"]
            for piece in answer.iter_raw():
                digest.update(piece)
                size += len(piece)
                pieces += 1
        growth = peak_memory(server.pid) - before
    assert disposition.startswith('attachment; filename="tracker-snapshots-')
    assert disposition.endswith('.jsonl"')
    assert size == len(cli) > 2 * GROWTH_ALLOWED
    assert digest.hexdigest() == hashlib.sha256(cli).hexdigest()
    assert cli.count(b"\n") == SNAPSHOTS
    assert pieces > 100, "the rows came in a few big pieces: were they held before sending?"
    assert growth < GROWTH_ALLOWED, f"the server grew by {growth / 2**20:.0f} MiB"


def test_tasks_as_csv_filtered_as_the_list_is_and_bad_parameters_named(tmp_path: Path) -> None:
    url = filled(tmp_path)
    cli = subprocess.run(
        [TRACKER, "--db", url, "export", "--table", "tasks", "--format", "csv"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    with serving(url) as (base, _server), httpx.Client(base_url=base, headers=AUTH) as client:
        every = client.get("/v1/export", params={"table": "tasks", "format": "csv"})
        odd = client.get("/v1/export", params={"table": "tasks", "format": "csv", "label": "odd"})
        listed = client.get("/v1/tasks", params={"label": "odd", "limit": 1000}).json()["tasks"]
        recent = client.get(
            "/v1/export", params={"table": "snapshots", "since": "2026-03-02T08:00:00Z"}
        )
        unauthorised = httpx.get(f"{base}/v1/export")
        bad = {
            name: client.get("/v1/export", params={name: value})
            for name, value in [("table", "users"), ("format", "xml"), ("since", "soon")]
        }
        sort_of_status = client.get("/v1/export", params={"finish_reason": "eaten"})
    assert every.headers["content-type"] == "text/csv; charset=utf-8"
    assert every.text == cli.replace("\r\n", "\n")
    header, *rows = odd.text.splitlines()
    assert header == cli.splitlines()[0]
    assert [row.split(",")[0] for row in rows] == sorted(task["task_id"] for task in listed)
    assert len(rows) == TASKS // 2
    assert recent.text.count("\n") == SNAPSHOTS - 8 * 36000
    assert unauthorised.status_code == 401
    for name, answer in [*bad.items(), ("finish_reason", sort_of_status)]:
        assert answer.status_code == 422, name
        assert answer.headers["content-type"] == "application/problem+json"
        assert [error.get("parameter") for error in answer.json()["errors"]] == [name]
