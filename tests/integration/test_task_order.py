"""The orders a list of tasks takes, on a real SQLite file and a real PostgreSQL database: by
registration, last poll, progress or status, either way, paged by keyset with ties and tasks
without a value, every task once (docs/http-api.md, GET /v1/tasks); the last error's filter;
exports of the tasks a filter selects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from tracker.core.models import Position, SortKey, Task, TaskFilter, TaskOrder
from tracker.store import Database
from tracker.store.schema import snapshots, tasks
from tracker.web import cursors

NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
ORDERS = [TaskOrder(key, descending) for key in SortKey for descending in (False, True)]


def set_columns(database: Database, task_id: str, **values: Any) -> None:
    with database.engine.begin() as connection:
        connection.execute(update(tasks).where(tasks.c.task_id == task_id).values(**values))


def registered_with_ties(database: Database) -> None:
    """Twenty tasks, registered three at a time in the same microsecond; progress, status and
    last poll shared by several, and missing on some."""
    statuses = ["queued", "In_Progress", "in_progress", "completed", None]
    for index in range(20):
        at = NOW + timedelta(seconds=index // 3)
        database.tasks.add_tasks([f"video_{index:02d}"], None, at)
        if index % 5 == 4:
            continue  # never polled: no progress, status or last poll
        set_columns(
            database,
            f"video_{index:02d}",
            progress=(index % 4) * 25,
            status=statuses[index % 4],
            last_polled_at=NOW + timedelta(minutes=index % 3),
            last_error=f"HTTP 503: Upstream {'Timeout' if index % 2 else 'reset'} #{index}",
        )


def expected(all_tasks: list[Task], order: TaskOrder) -> list[str]:
    """The order spelled out: by the key's value (a status in any case), tasks without one
    last, ties by registration and then ID, all in one direction."""

    def value(task: Task) -> Any:
        raw = getattr(task, order.key.value)
        return raw.lower() if isinstance(raw, str) else raw

    def tie(task: Task) -> tuple[Any, ...]:
        return (value(task), task.registered_at, task.task_id)

    valued = sorted(
        (task for task in all_tasks if value(task) is not None),
        key=tie,
        reverse=order.descending,
    )
    unvalued = sorted(
        (task for task in all_tasks if value(task) is None),
        key=lambda task: (task.registered_at, task.task_id),
        reverse=order.descending,
    )
    return [task.task_id for task in valued + unvalued]


@pytest.mark.parametrize(
    "order", ORDERS, ids=lambda o: f"{o.key}-{'desc' if o.descending else 'asc'}"
)
def test_pages_in_every_order_visit_every_task_once_with_ties(
    database: Database, order: TaskOrder
) -> None:
    """Pages of three, each after the cursor of the one before (the cursor's round trip
    included), give the order spelled out, ties and tasks without a value among them."""
    registered_with_ties(database)
    every = database.reads.page(TaskFilter(), 100)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        after = cursors.position(cursor, order) if cursor else None
        page = database.reads.page(TaskFilter(), 3, after, order)
        seen += [task.task_id for task in page]
        if len(page) < 3:
            break
        cursor = cursors.after_task(page[-1], order)
    assert seen == expected(every, order)


INDEXES = {
    SortKey.REGISTERED_AT: "ix_tasks_registered_at_task_id",
    SortKey.LAST_POLLED_AT: "ix_tasks_last_polled_at_registered_at_task_id",
    SortKey.PROGRESS: "ix_tasks_progress_registered_at_task_id",
    SortKey.STATUS: "ix_tasks_status_registered_at_task_id",
}


@pytest.mark.parametrize(
    "order", ORDERS, ids=lambda o: f"{o.key}-{'desc' if o.descending else 'asc'}"
)
@pytest.mark.parametrize("value", [None, "valued"])
def test_a_sorted_page_reads_its_index_in_order_and_sorts_nothing(
    database: Database, order: TaskOrder, value: str | None
) -> None:
    """Each part of a sorted page (the tasks with a value, then those without) is read along
    the index of its column in its order, after a cursor with a value or without: no sort of
    every task the filter selects, however many there are."""
    known = {
        SortKey.REGISTERED_AT: None,
        SortKey.LAST_POLLED_AT: NOW,
        SortKey.PROGRESS: 50,
        SortKey.STATUS: "Queued",
    }
    after = Position(NOW, "video_x", known[order.key] if value else None)
    statements: list[tuple[str, Any]] = []

    def keep(*args: Any) -> None:
        if "FROM tasks" in args[2]:
            statements.append((args[2], args[3]))

    event.listen(database.engine, "before_cursor_execute", keep)
    try:
        database.reads.page(TaskFilter(), 10, after, order)
    finally:
        event.remove(database.engine, "before_cursor_execute", keep)
    assert statements
    with database.engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            # An empty table gives the planner no reason to prefer an index.
            for kind in ("seqscan", "bitmapscan", "sort"):
                connection.exec_driver_sql(f"SET enable_{kind} = off")
        explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
        plans = [
            str(connection.exec_driver_sql(explain + statement, parameters).all())
            for statement, parameters in statements
        ]
    # The tasks without a value are read by registration: along the column's index from its
    # empty values, or (as PostgreSQL picks on a table it knows nothing of) the registrations'.
    if value or order.key is SortKey.REGISTERED_AT:
        assert INDEXES[order.key] in plans[0], plans[0]
    for plan in plans:
        assert "Sort" not in plan and "TEMP B-TREE" not in plan, plan
        assert INDEXES[order.key] in plan or INDEXES[SortKey.REGISTERED_AT] in plan, plan


def test_the_last_error_is_found_in_any_case_and_its_wildcards_are_text(
    database: Database,
) -> None:
    registered_with_ties(database)
    set_columns(database, "video_00", last_error="disk 100% full_now")

    def found(text: str) -> set[str]:
        return {task.task_id for task in database.reads.page(TaskFilter(error=text), 100)}

    odd_polled = {f"video_{i:02d}" for i in range(20) if i % 2 and i % 5 != 4}
    assert found("upstream TIMEOUT") == odd_polled
    assert found("100% full_") == {"video_00"}
    assert found("%") == {"video_00"} and found("_now") == {"video_00"}
    sorted_errors = database.reads.page(
        TaskFilter(error="timeout"), 100, order=TaskOrder(SortKey.PROGRESS)
    )
    assert [task.task_id for task in sorted_errors] == expected(
        [task for task in database.reads.page(TaskFilter(), 100) if task.task_id in odd_polled],
        TaskOrder(SortKey.PROGRESS),
    )


def test_an_export_holds_the_filtered_tasks_and_only_their_snapshots(
    database: Database,
) -> None:
    """Exports read in pages (here of two rows) give every row once, in order; a filter keeps
    the tasks it selects and their snapshots only."""
    registered_with_ties(database)
    with database.engine.begin() as connection:
        connection.execute(
            snapshots.insert(),
            [
                {"task_id": f"video_{i % 20:02d}", "polled_at": NOW + timedelta(seconds=i)}
                for i in range(45)
            ],
        )
    odd = TaskFilter(error="timeout")
    every_task = list(database.reads.export_rows("tasks", batch=2))
    assert [row["task_id"] for row in every_task] == [f"video_{i:02d}" for i in range(20)]
    chosen = [row["task_id"] for row in database.reads.export_rows("tasks", None, odd, batch=2)]
    assert chosen == [f"video_{i:02d}" for i in range(20) if i % 2 and i % 5 != 4]
    theirs = list(database.reads.export_rows("snapshots", None, odd, batch=2))
    assert [row["task_id"] for row in theirs] == [
        f"video_{i % 20:02d}" for i in range(45) if f"video_{i % 20:02d}" in chosen
    ]
    assert [row["id"] for row in theirs] == sorted(row["id"] for row in theirs)
    recent = list(database.reads.export_rows("snapshots", NOW + timedelta(seconds=40), batch=2))
    assert [row["polled_at"] for row in recent] == [
        NOW + timedelta(seconds=i) for i in range(40, 45)
    ]
