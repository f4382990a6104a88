"""Tasks as the daemon leaves them, with figures worked out by hand: the report's fixture for
the store's tests on both databases, the command and the API, and the Insights page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from tracker.store import Database
from tracker.store.schema import tasks

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DAY_1 = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
DAY_2 = datetime(2026, 12, 5, 17, 10, tzinfo=UTC)
#: The window holding every task of the fixture but the one registered before it.
SINCE = "2026-11-29T12:00:00Z"
UNTIL = "2026-12-06T12:00:00Z"


def at(start: datetime, seconds: float) -> datetime:
    return start + timedelta(seconds=seconds)


def task(task_id: str, registered: datetime, **columns: Any) -> dict[str, Any]:
    """A row of tasks as the daemon would have left it."""
    finish_reason = columns.get("finish_reason")
    return {
        "task_id": task_id,
        "registered_at": registered,
        "next_poll_at": columns.get("finished_at", registered),
        "finished": finish_reason is not None,
        "poll_count": 0,
        "provider": "default",
        **columns,
    }


def fill(database: Database, rows: list[dict[str, Any]]) -> None:
    with database.engine.begin() as connection:
        for row in rows:
            connection.execute(insert(tasks).values(**row))


def fixture_rows() -> list[dict[str, Any]]:
    """sora-2 at 1280x720: three completed (100, 200, 300 s), one failed, two unfinished.
    sora-2-pro: ten completed (10 to 100 s), one of each other ending. No model: one task
    never answered. And one sora-2 task registered before the window."""
    sora = {"model": "sora-2", "size": "1280x720", "seconds": "8"}
    rows: list[dict[str, Any]] = []
    # (ID, registered, when the API made the video, seconds from then to its first running
    # answer and to its end, how it ended, polls). Without created_at (None), its durations
    # start at its registration.
    ended = (
        ("a1", DAY_1, at(DAY_1, -5), 20, 100, "completed", 3),  # made before it was registered
        ("a2", DAY_1, None, 30, 200, "completed", 4),
        ("a3", DAY_2, DAY_2, 10, 300, "completed", 5),
        ("a4", DAY_2, DAY_2, 40, 90, "failed", 6),
    )
    for task_id, registered, created, running, end, reason, polls in ended:
        start = created or registered
        rows.append(
            task(
                task_id,
                registered,
                **sora,
                **({} if created is None else {"created_at": created}),
                first_running_at=at(start, running),
                finish_reason=reason,
                finished_at=at(start, end),
                poll_count=polls,
            )
        )
    rows += [
        task("a5", DAY_2, **sora, first_running_at=at(DAY_2, 50), poll_count=7),
        task("a6", DAY_2, **sora, poll_count=0),  # still queued: no queue time yet
        task(
            "old",
            NOW - timedelta(days=8),
            **sora,
            finish_reason="failed",
            finished_at=NOW - timedelta(days=8),
            poll_count=9,
        ),
    ]
    for n in range(1, 11):
        # Microseconds below the millisecond are cut: 10 s, 20 s … 100 s exactly.
        start = at(DAY_1, n) + timedelta(microseconds=400)
        rows.append(
            task(
                f"p{n}",
                DAY_1,
                model="sora-2-pro",
                created_at=start,
                finish_reason="completed",
                finished_at=at(start, 10 * n) + timedelta(microseconds=500),
                poll_count=2,
            )
        )
    for reason in ("not_found", "timed_out", "removed"):
        rows.append(
            task(
                f"p-{reason}",
                DAY_1,
                model="sora-2-pro",
                finish_reason=reason,
                finished_at=at(DAY_1, 60),
                poll_count=2,
            )
        )
    rows.append(task("never-answered", DAY_2, poll_count=2))
    return rows
