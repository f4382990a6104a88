"""The stores on a real SQLite file and a real PostgreSQL database: leases, what is
stored and how, read-only SQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.dialects import postgresql, sqlite

from tests.doubles import FakeClock
from tracker import Tracker, python_api
from tracker.core.models import Failure, FetchResult, Position, TaskFilter
from tracker.core.video import Video
from tracker.daemon.poller import Policy, decide
from tracker.errors import UnknownTaskError
from tracker.store import Database, bulk, migrations
from tracker.store import tasks as task_store
from tracker.store.engine import create_engine
from tracker.store.schema import UTCDateTime, snapshots, tasks
from tracker.store.tasks import TaskStore

NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
POLICY = Policy(interval=10, give_up_after=3600, request_timeout=5)


def scalar_row(database: Database, sql: str) -> tuple[object, ...]:
    with database.engine.connect() as connection:
        return tuple(connection.execute(text(sql)).one())


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_url: str) -> None:
    """WAL lets readers run beside the daemon; the busy timeout makes writers wait, not fail."""
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_timestamps_are_stored_as_utc_and_read_back_aware(database: Database) -> None:
    """A time given in another zone is stored as UTC and comes back as aware UTC."""
    paris = datetime(2026, 3, 1, 9, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    database.tasks.add_tasks(["t"], None, paris)
    [task] = database.reads.tasks()
    assert task.registered_at == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    assert task.registered_at.utcoffset() == timedelta(0)
    (raw,) = scalar_row(database, "SELECT registered_at FROM tasks")
    if isinstance(raw, str):  # SQLite: text in UTC
        assert raw.startswith("2026-03-01 09:30:00")
    else:  # PostgreSQL: timestamptz
        assert raw == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def test_adding_is_idempotent(database: Database) -> None:
    """Adding the same IDs twice registers them once and reports the second time as existing."""
    first = database.tasks.add_tasks(["a", "b"], "batch 1", NOW)
    second = database.tasks.add_tasks(["b", "c"], "batch 2", NOW + timedelta(seconds=5))
    assert (first.added, first.existing) == (["a", "b"], [])
    assert (second.added, second.existing) == (["c"], ["b"])
    labels = {task.task_id: task.label for task in database.reads.tasks()}
    assert labels == {"a": "batch 1", "b": "batch 1", "c": "batch 2"}


def test_removing_an_unknown_id_changes_nothing(database: Database) -> None:
    """One unknown ID rejects the whole remove: the known ones stay unfinished."""
    database.tasks.add_tasks(["a"], None, NOW)
    with pytest.raises(UnknownTaskError, match="'nope'"):
        database.tasks.remove_tasks(["a", "nope"], NOW, channels=())
    assert not database.reads.tasks()[0].finished
    result = database.tasks.remove_tasks(["a", "a"][:1], NOW, channels=())
    assert result.removed == ["a"]
    [task] = database.reads.tasks()
    assert (task.finished, task.finish_reason, task.finished_at) == (True, "removed", NOW)


def test_a_claim_is_exclusive_until_its_lease_ends(database: Database) -> None:
    """Two daemons never hold one task; an expired lease lets another daemon take it over."""
    database.tasks.add_tasks([f"t{i}" for i in range(5)], None, NOW)
    lease_end = NOW + timedelta(seconds=60)
    first = database.polls.claim_due("daemon-a", NOW, lease_end, 3)
    second = database.polls.claim_due("daemon-b", NOW, lease_end, 10)
    assert len(first) == 3 and len(second) == 2
    assert not {t.task_id for t in first} & {t.task_id for t in second}
    assert database.polls.claim_due("daemon-c", NOW, lease_end, 10) == []
    taken_over = database.polls.claim_due(
        "daemon-c", lease_end, lease_end + timedelta(seconds=60), 10
    )
    assert len(taken_over) == 5


def test_a_write_keeps_only_the_results_of_tasks_still_held(database: Database) -> None:
    """Of one daemon's results, those of tasks another daemon took over when the lease ran out
    and of a task removed meanwhile are dropped, answered or not; the rest are written, each
    with its snapshot."""
    database.tasks.add_tasks(["lost", "lost-error"], None, NOW - timedelta(seconds=10))
    database.tasks.add_tasks(["held", "held-error", "removed"], None, NOW)
    lease_end = NOW + timedelta(seconds=60)
    claimed = database.polls.claim_due("a", NOW, lease_end, 10)
    taken = database.polls.claim_due("b", lease_end, lease_end + timedelta(seconds=60), 2)
    assert {task.task_id for task in taken} == {"lost", "lost-error"}  # due first
    database.tasks.remove_tasks(["removed"], NOW, channels=())
    answer = FetchResult(200, 1, "{}", Video("in_progress", 5), None)
    failure = FetchResult.failed(Failure.CONNECTION, "refused", 1)
    records = [
        decide(task, failure if "error" in task.task_id else answer, NOW, POLICY, random.Random(1))
        for task in claimed
    ]
    assert len(records) == 5
    assert database.polls.record_polls("a", records) == 2
    stored = {task.task_id: task for task in database.reads.tasks()}
    assert {i: (t.poll_count, t.lease_owner) for i, t in stored.items() if i != "removed"} == {
        "held": (1, None),
        "held-error": (1, None),
        "lost": (0, "b"),
        "lost-error": (0, "b"),
    }
    assert stored["removed"].finish_reason == "removed"
    histories = {i: database.reads.history(i) for i in stored}
    assert {i: len(h) for i, h in histories.items()} == {
        "held": 1,
        "held-error": 1,
        "lost": 0,
        "lost-error": 0,
        "removed": 1,
    }
    assert histories["removed"][0].http_status is None  # the removal's, none from the poll


def test_a_tick_of_polls_updates_its_tasks_in_one_statement_a_kind(database: Database) -> None:
    """The tasks of a write's answered polls are updated by one statement, and those of its
    unanswered polls by another, however many there are (on SQLite a statement of one step:
    bulk.JSONRows)."""
    database.tasks.add_tasks([f"t{n}" for n in range(6)], None, NOW)
    claimed = database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 10)
    answer = FetchResult(200, 1, "{}", Video("in_progress", 5), None)
    failure = FetchResult.failed(Failure.CONNECTION, "refused", 1)
    records = [
        decide(task, failure if n % 3 == 0 else answer, NOW, POLICY, random.Random(1))
        for n, task in enumerate(claimed)
    ]
    runs: list[int] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        if statement.startswith("UPDATE tasks SET") and "last_polled_at=" in statement:
            runs.append(len(parameters) if isinstance(parameters, list) else 1)

    event.listen(database.engine, "before_cursor_execute", seen)
    assert database.polls.record_polls("d", records) == 6
    event.remove(database.engine, "before_cursor_execute", seen)
    assert sorted(runs) == [1, 1]
    stored = database.reads.tasks()
    assert {(t.poll_count, t.error_count, t.lease_owner) for t in stored if t.status} == {
        (1, 0, None)
    }
    assert {(t.poll_count, t.error_count) for t in stored if not t.status} == {(1, 1)}
    assert sum(len(database.reads.history(t.task_id)) for t in stored) == 6


def _polled_twice(database: Database, first: Video | None, second: Video | None) -> list[Any]:
    """Two records of one task "t" in one write: a write failed for longer than its lease,
    and the task was claimed and polled again while its first result waited."""
    database.tasks.add_tasks(["t"], None, NOW)
    [claim] = database.polls.claim_due("d", NOW, NOW + timedelta(seconds=1), 1)
    later = NOW + timedelta(seconds=20)
    [again] = database.polls.claim_due(
        "d", later, later + timedelta(seconds=60), 1, include_not_due=True
    )
    failure = FetchResult.failed(Failure.CONNECTION, "refused", 1)
    return [
        decide(task, FetchResult(200, 1, "{}", video, None) if video else failure, at, POLICY, rng)
        for task, video, at, rng in (
            (claim, first, NOW, random.Random(1)),
            (again, second, later, random.Random(2)),
        )
    ]


def test_a_task_polled_twice_before_a_write_has_both_polls_written_in_order(
    database: Database,
) -> None:
    """Both polls count and both snapshots are kept; the task shows the later one, with what
    only the earlier saw kept (the model the later answer left out, the first running time)."""
    records = _polled_twice(
        database, Video("in_progress", 10, model="sora-2"), Video("in_progress", 30)
    )
    assert database.polls.record_polls("d", records) == 2
    [stored] = database.reads.tasks()
    assert (stored.poll_count, stored.status, stored.progress) == (2, "in_progress", 30)
    assert (stored.model, stored.first_running_at) == ("sora-2", NOW)
    assert stored.last_polled_at == NOW + timedelta(seconds=20) and stored.lease_owner is None
    assert [s.progress for s in database.reads.history("t")] == [10, 30]


def test_a_task_polled_twice_and_taken_over_meanwhile_gets_neither_poll(
    database: Database,
) -> None:
    """Both polls of a task another daemon took over before the write are dropped, the later
    one too (on PostgreSQL it goes by a statement that checks no lease): the task keeps the
    other daemon's lease and no poll of ours."""
    records = _polled_twice(database, Video("queued", 0), Video("in_progress", 40))
    taken_at = NOW + timedelta(seconds=90)
    database.polls.claim_due("e", taken_at, taken_at + timedelta(seconds=60), 1)
    assert database.polls.record_polls("d", records) == 0
    [stored] = database.reads.tasks()
    assert (stored.poll_count, stored.status, stored.lease_owner) == (0, None, "e")
    assert database.reads.history("t") == []


def test_a_task_polled_twice_whose_status_went_back_shows_the_later_one(
    database: Database,
) -> None:
    """Queued, then in progress, then queued again (a relay's answer) in one write: the later
    poll is compared with the status the earlier one left, so its status is written."""
    database.tasks.add_tasks(["t"], None, NOW)
    answers = {
        status: FetchResult(200, 1, "{}", Video(status, 0), None)
        for status in ("queued", "in_progress")
    }
    [task] = database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 1)
    database.polls.record_polls(
        "d", [decide(task, answers["queued"], NOW, POLICY, random.Random(1))]
    )
    records = []
    for at, status in (
        (NOW + timedelta(seconds=30), "in_progress"),
        (NOW + timedelta(seconds=60), "queued"),
    ):
        [task] = database.polls.claim_due(
            "d", at, at + timedelta(seconds=1), 1, include_not_due=True
        )
        records.append(decide(task, answers[status], at, POLICY, random.Random(2)))
    assert database.polls.record_polls("d", records) == 2
    [stored] = database.reads.tasks()
    assert (stored.poll_count, stored.status) == (3, "queued")
    assert [s.status for s in database.reads.history("t")] == ["queued", "in_progress", "queued"]


def test_a_poll_after_the_one_that_finished_its_task_in_the_same_write_is_dropped(
    database: Database,
) -> None:
    """A task's history ends with the poll that finished it: a later poll of it waiting in the
    same write (here a failed request) neither reopens it nor adds a snapshot."""
    records = _polled_twice(database, Video("completed", 100), None)
    assert database.polls.record_polls("d", records) == 1
    [stored] = database.reads.tasks()
    assert (stored.status, stored.finish_reason, stored.poll_count) == ("completed", "completed", 1)
    assert stored.finished and stored.error_count == 0
    assert [s.status for s in database.reads.history("t")] == ["completed"]


def test_a_refused_record_beside_a_task_polled_twice_loses_neither_of_its_polls(
    database: Database,
) -> None:
    """When the database refuses one record of a write, the rest are written again task by
    task: a task's two polls go together (alone, the first would give the lease up and the
    second find it gone), and the refused one is kept without its answer."""
    records = _polled_twice(database, Video("queued", 0), Video("in_progress", 40))
    database.tasks.add_tasks(["u"], None, NOW)
    [other] = database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 1)
    unstorable = FetchResult(200, 1, "{}", Video("in_progress\ud800", 5), None)
    records.append(decide(other, unstorable, NOW, POLICY, random.Random(3)))
    assert database.polls.record_polls("d", records) == 3
    stored = {task.task_id: task for task in database.reads.tasks()}
    assert (stored["t"].poll_count, stored["t"].status, stored["t"].progress) == (
        2,
        "in_progress",
        40,
    )
    assert (stored["u"].poll_count, stored["u"].status) == (1, None)
    assert stored["u"].last_error == "the answer could not be stored: UnicodeEncodeError"


def test_claims_come_earliest_due_first_and_skip_tasks_not_due(database: Database) -> None:
    """Only tasks whose next_poll_at has come are claimed, oldest first."""
    database.tasks.add_tasks(["late"], None, NOW + timedelta(seconds=30))
    database.tasks.add_tasks(["early"], None, NOW - timedelta(seconds=30))
    database.tasks.add_tasks(["middle"], None, NOW)
    claimed = database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 10)
    assert [task.task_id for task in claimed] == ["early", "middle"]


def test_a_naive_time_is_refused_on_every_way_to_the_database() -> None:
    """SQLAlchemy's parameters, the SQLite batch writer's text and PostgreSQL's array elements
    all refuse a time without a zone rather than guess one."""
    naive = datetime(2026, 3, 1, 9, 30)
    ways = [
        lambda value: UTCDateTime().process_bind_param(value, postgresql.dialect()),
        UTCDateTime.sqlite_text,
        bulk._array_element("at", UTCDateTime()),
    ]
    for way in ways:
        with pytest.raises(ValueError, match=r"naive datetime .* UTC only"):
            way(naive)
        assert way(NOW) is not None


def test_sqlite_times_written_by_the_batch_writer_match_sqlalchemys_and_read_back_aware(
    sqlite_url: str,
) -> None:
    """The batch writer's text (put together from its parts) is SQLAlchemy's for the same
    instant in any zone, from the first year to the last; read back, stored text becomes aware
    UTC, and text carrying an offset of its own, or a bare date, still reads as the instant it
    names."""
    engine = create_engine(sqlite_url)
    migrations.upgrade(engine)
    paris = ZoneInfo("Europe/Paris")
    instants = [
        datetime(2026, 3, 1, 9, 30, 0, 5, tzinfo=UTC),
        datetime(2026, 7, 1, tzinfo=UTC),
        datetime(1, 1, 2, 0, 0, 0, 999999, tzinfo=UTC),
        datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    sqlalchemys = sqlite.DATETIME().bind_processor(sqlite.dialect())
    for instant in instants:
        for same in (instant, instant.astimezone(paris), instant):
            expected = sqlalchemys(instant.replace(tzinfo=None))
            assert UTCDateTime.sqlite_text(same) == expected
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime.sqlite_text(datetime(2026, 3, 1, 9, 30))
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO tasks (task_id, registered_at, next_poll_at) VALUES (:a, :r, :n)"),
            {"a": "t", "r": "2026-03-01 09:30:00.000005", "n": "2026-03-01 10:30:00+01:00"},
        )
        read = connection.execute(select(tasks.c.registered_at, tasks.c.next_poll_at)).one()
        # A bare date, as hand-written SQL may store, is midnight UTC like any other time.
        connection.execute(text("UPDATE tasks SET next_poll_at = '2026-03-01'"))
        dated = connection.execute(select(tasks.c.next_poll_at)).scalar_one()
    assert tuple(read) == (instants[0], datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    assert all(value.tzinfo is UTC for value in read)
    assert dated == datetime(2026, 3, 1, tzinfo=UTC) and dated.tzinfo is UTC
    engine.dispose()


def test_an_error_poll_keeps_what_was_known_and_stores_the_error(database: Database) -> None:
    """A failed poll records its error but does not erase the last good status."""
    database.tasks.add_tasks(["t"], None, NOW)
    [task] = database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 1)
    good = FetchResult(200, 1, '{"status":"queued"}', Video("queued", 0, model="sora-2"), None)
    database.polls.record_polls("d", [decide(task, good, NOW, POLICY, random.Random(1))])
    later = NOW + timedelta(seconds=11)
    [task] = database.polls.claim_due("d", later, later + timedelta(seconds=60), 1)
    bad = FetchResult(503, 2, None, None, {"type": "http_error", "message": "HTTP 503"})
    database.polls.record_polls("d", [decide(task, bad, later, POLICY, random.Random(1))])
    [stored] = database.reads.tasks()
    assert (stored.status, stored.model, stored.error_count) == ("queued", "sora-2", 1)
    assert stored.last_error == "HTTP 503: HTTP 503"
    history = database.reads.history("t")
    assert [s.http_status for s in history] == [200, 503]
    assert history[1].error == {"type": "http_error", "message": "HTTP 503"}
    assert history[1].status is None


def test_a_poll_that_keeps_the_status_writes_neither_it_nor_the_finish(
    database: Database,
) -> None:
    """On SQLite, a poll showing the status the task had is written by the narrow UPDATE (no
    status or finish columns, so their indexes are not rewritten), yet stores all it saw; a new
    status and a finish still go through the full one, as every poll does on PostgreSQL."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("UPDATE tasks SET") and "last_polled_at=" in statement:
            statements.append(statement)

    database.tasks.add_tasks(["t"], None, NOW)
    event.listen(database.engine, "before_cursor_execute", seen)

    def poll(at: datetime, video: Video) -> None:
        [task] = database.polls.claim_due("d", at, at + timedelta(seconds=60), 1)
        answer = FetchResult(200, 1, "{}", video, None)
        database.polls.record_polls("d", [decide(task, answer, at, POLICY, random.Random(1))])

    poll(NOW, Video("in_progress", 10, model="sora-2"))
    later = NOW + timedelta(seconds=11)
    poll(later, Video("in_progress", 40))
    [stored] = database.reads.tasks()
    assert (stored.status, stored.progress, stored.model) == ("in_progress", 40, "sora-2")
    assert (stored.poll_count, stored.last_polled_at) == (2, later)
    assert stored.next_poll_at > later and not stored.finished
    last = later + timedelta(seconds=11)
    poll(last, Video("completed", 100))
    [stored] = database.reads.tasks()
    assert (stored.status, stored.finish_reason, stored.finished_at) == (
        "completed",
        "completed",
        last,
    )
    event.remove(database.engine, "before_cursor_execute", seen)
    wide = [" status=" in statement and "finished=" in statement for statement in statements]
    assert wide == ([True, False, True] if database.engine.dialect.name == "sqlite" else [True] * 3)


def test_history_of_an_unknown_task_is_an_error(database: Database) -> None:
    """Asking for the history of an ID never registered is a usage error, not an empty list."""
    with pytest.raises(UnknownTaskError):
        database.reads.history("never-added")


def test_timed_out_sweep_finishes_only_old_unheld_unfinished_tasks(
    database: Database,
) -> None:
    """give-up-after finishes tasks registered before the cutoff, except those being polled."""
    database.tasks.add_tasks(["old", "old-held"], None, NOW - timedelta(hours=25))
    database.tasks.add_tasks(["young"], None, NOW)
    database.polls.claim_due(
        "d", NOW, NOW + timedelta(seconds=60), 10, include_not_due=True, polled_before=None
    )
    database.polls.release("d", ["old"])
    assert database.polls.finish_timed_out(NOW, NOW - timedelta(hours=24), channels=()) == ["old"]
    reasons = {task.task_id: task.finish_reason for task in database.reads.tasks()}
    assert reasons == {"old": "timed_out", "old-held": None, "young": None}


def test_a_finished_task_has_no_poll_to_come(database: Database) -> None:
    """However a task finishes (a poll saw it complete, `remove`, the give-up sweep), its
    next_poll_at is the time it finished: nothing reading it sees a poll coming. A task still
    watched keeps its own, and the claim takes it as before."""
    database.tasks.add_tasks(["polled", "removed", "given-up"], None, NOW)
    claimed = {task.task_id: task for task in database.polls.claim_due("d", NOW, NOW, 10)}
    fetch = FetchResult(200, 5, '{"status":"completed"}', Video("completed", 100), None)
    polled = decide(claimed["polled"], fetch, NOW, POLICY, random.Random(1))
    assert polled.finished and polled.next_poll_at > NOW
    database.polls.record_polls("d", [polled])
    database.polls.release("d", ["removed", "given-up"])
    removed_at, swept_at = NOW + timedelta(seconds=3), NOW + timedelta(seconds=7)
    database.tasks.remove_tasks(["removed"], removed_at, channels=())
    database.tasks.add_tasks(["watched"], None, swept_at)
    database.polls.finish_timed_out(swept_at, NOW + timedelta(seconds=1), channels=())
    stored = {task.task_id: task for task in database.reads.tasks()}
    assert {name: (t.finished_at, t.next_poll_at) for name, t in stored.items()} == {
        "polled": (NOW, NOW),
        "removed": (removed_at, removed_at),
        "given-up": (swept_at, swept_at),
        "watched": (None, swept_at),
    }
    assert database.polls.next_due(swept_at) == swept_at
    later = swept_at + timedelta(seconds=1)
    claimed = database.polls.claim_due("d", later, later + timedelta(seconds=60), 10)
    assert [task.task_id for task in claimed] == ["watched"]


def test_the_due_claim_uses_the_partial_index(database: Database) -> None:
    """The claim reads a partial index of unfinished tasks (ix_tasks_due, or the provider's),
    so its cost follows unfinished tasks, not history."""
    with database.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # An empty table gives the planner no reason to prefer an index: only the plans that
            # read one in next_poll_at order are left to it.
            for kind in ("seqscan", "bitmapscan", "sort"):
                connection.exec_driver_sql(f"SET enable_{kind} = off")
            plan = connection.exec_driver_sql(
                "EXPLAIN SELECT task_id FROM tasks WHERE finished = false "
                "AND next_poll_at <= now() ORDER BY next_poll_at LIMIT 10"
            ).all()
        else:
            plan = connection.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT task_id FROM tasks WHERE finished = 0 "
                "AND next_poll_at <= '2026-01-01' ORDER BY next_poll_at LIMIT 10"
            ).all()
    assert any("ix_tasks_due" in str(row) or "ix_tasks_provider_due" in str(row) for row in plan), (
        plan
    )


def test_a_poll_is_written_as_a_snapshot_with_sql_nulls(database: Database) -> None:
    """The body is stored as received; error is SQL NULL (not JSON null) when all went well."""
    database.tasks.add_tasks(["t"], "lbl", NOW)
    [task] = database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 1)
    body = '{"id": "t",   "status": "in_progress", "progress": "45%", "model": "sora-2"}'
    fetch = FetchResult(200, 12.5, body, Video("in_progress", 45, model="sora-2"), None)
    record = decide(task, fetch, NOW, POLICY, random.Random(1))
    assert database.polls.record_polls("d", [record]) == 1
    row = scalar_row(
        database,
        "SELECT http_status, status, progress, error IS NULL, CAST(body AS TEXT), finished, "
        "latency_ms FROM snapshots",
    )
    assert row == (200, "in_progress", 45, True, body, False, 12.5)
    [stored] = database.reads.tasks()
    assert (stored.status, stored.progress, stored.model, stored.poll_count) == (
        "in_progress",
        45,
        "sora-2",
        1,
    )
    assert stored.lease_owner is None
    assert stored.next_poll_at > NOW


def written_beside_a_good_one(database: Database, bad: FetchResult) -> tuple[Any, Any]:
    """The snapshots of a poll answered ``bad`` and of one answered well, written together."""
    database.tasks.add_tasks(["bad", "good"], None, NOW)
    claimed = {
        t.task_id: t for t in database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 10)
    }
    good = FetchResult(200, 1, '{"status": "queued"}', Video("queued", 0), None)
    records = [
        decide(claimed["bad"], bad, NOW, POLICY, random.Random(1)),
        decide(claimed["good"], good, NOW, POLICY, random.Random(1)),
    ]
    assert database.polls.record_polls("d", records) == 2
    assert all(task.lease_owner is None for task in database.reads.tasks())
    [bad_snapshot] = database.reads.history("bad")
    [good_snapshot] = database.reads.history("good")
    assert good_snapshot.status == "queued"
    return bad_snapshot, good_snapshot


def test_one_unstorable_answer_does_not_hold_back_the_others(database: Database) -> None:
    """A record the database refuses (a lone surrogate here) is stored as an error poll; the
    rest of the batch is written as usual."""
    bad = FetchResult(200, 1, '{"status": "x"}', Video("in\ud800progress", 5), None)
    bad_snapshot, _ = written_beside_a_good_one(database, bad)
    assert bad_snapshot.error["type"] == "unstorable"
    assert (bad_snapshot.http_status, bad_snapshot.body, bad_snapshot.status) == (200, None, None)


def test_an_answer_the_server_refuses_does_not_hold_back_the_others(postgres_url: str) -> None:
    """PostgreSQL refuses a progress past its integer column (SQLite keeps it): that record is
    stored as an error poll, the rest of the batch as usual. The snapshots go in by COPY,
    whose errors are the driver's own: they are the same database errors as any statement's."""
    database = Database.open(postgres_url)
    huge = FetchResult(200, 1, '{"progress": 1e12}', Video("in_progress", 10**12), None)
    try:
        bad_snapshot, _ = written_beside_a_good_one(database, huge)
    finally:
        database.close()
    assert bad_snapshot.error["type"] == "unstorable"


def test_pages_of_tasks_come_newest_first_and_never_repeat_or_skip(database: Database) -> None:
    """Paging on from a page's last task gives every task once, newest first, even while
    newer tasks are registered between two pages."""
    for minute in range(25):
        database.tasks.add_tasks([f"t{minute:02d}"], None, NOW + timedelta(minutes=minute))
    seen: list[str] = []
    after = None
    while True:
        page = database.reads.page(TaskFilter(), 7, after)
        seen += [task.task_id for task in page]
        if len(page) < 7:
            break
        after = Position(page[-1].registered_at, page[-1].task_id)
        database.tasks.add_tasks([f"new{len(seen)}"], None, NOW + timedelta(hours=1))
    assert seen == [f"t{minute:02d}" for minute in reversed(range(25))]
    assert database.reads.count(TaskFilter()) == 25 + 3


def test_filters_select_by_status_state_label_and_id_prefix(database: Database) -> None:
    """Each filter narrows the list; the ID prefix is exact, in case and characters."""
    database.tasks.add_tasks(["video_a", "video_b", "Video_c", "sora-2:task_x"], "L", NOW)
    database.tasks.add_tasks(["other_1"], None, NOW)
    database.tasks.remove_tasks(["video_b"], NOW, channels=())

    def ids(which: TaskFilter) -> list[str]:
        return sorted(task.task_id for task in database.reads.stream(which, batch=2))

    assert ids(TaskFilter(prefix="video_")) == ["video_a", "video_b"]
    assert ids(TaskFilter(prefix="sora-2:")) == ["sora-2:task_x"]
    assert ids(TaskFilter(prefix="video_%")) == []
    assert ids(TaskFilter(label="L", finished=False)) == ["Video_c", "sora-2:task_x", "video_a"]
    assert ids(TaskFilter(finished=True)) == ["video_b"]
    assert database.reads.count(TaskFilter(label="L")) == 4


@pytest.mark.parametrize(
    ("which", "index"),
    [
        (TaskFilter(status="FAILED"), "ix_tasks_status_registered_at_task_id"),
        (
            TaskFilter(label="batch", finished=False),
            "ix_tasks_unfinished_label_registered_at_task_id",
        ),
    ],
)
def test_a_page_of_a_rare_filter_reads_its_own_index(
    database: Database, which: TaskFilter, index: str
) -> None:
    """A page of one status's tasks (in any case), or of one label's unfinished ones, is read
    along an index of its own, newest first: a status few tasks have, or a label whose tasks
    have nearly all finished, is a short read rather than a walk through every registration."""
    statements: list[tuple[str, Any]] = []

    def keep(*args: Any) -> None:
        if "FROM tasks" in args[2]:  # the page's, not a connection's set-up
            statements.append((args[2], args[3]))

    event.listen(database.engine, "before_cursor_execute", keep)
    try:
        database.reads.page(which, 10, Position(NOW, "t"))
    finally:
        event.remove(database.engine, "before_cursor_execute", keep)
    [(statement, parameters)] = statements
    with database.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # An empty table gives the planner no reason to prefer an index.
            for kind in ("seqscan", "bitmapscan", "sort"):
                connection.exec_driver_sql(f"SET enable_{kind} = off")
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        plan = connection.exec_driver_sql(explain + statement, parameters).all()
    assert any(index in str(row) for row in plan), plan


def test_a_history_streams_its_first_or_last_snapshots(database: Database) -> None:
    """`history --limit N` reads the first N snapshots, `--tail N` the last N, oldest first."""
    database.tasks.add_tasks(["t"], None, NOW)
    rng = random.Random(1)
    for step in range(6):
        now = NOW + timedelta(seconds=step)
        [task] = database.polls.claim_due(
            "d", now, now + timedelta(seconds=60), 1, include_not_due=True
        )
        fetch = FetchResult(200, 1.0, '{"status": "queued"}', Video("queued", step), None)
        database.polls.record_polls("d", [decide(task, fetch, now, POLICY, rng)])
    first = [s.progress for s in database.reads.stream_history("t", first=2)]
    last = [s.progress for s in database.reads.stream_history("t", last=2)]
    assert (first, last) == ([0, 1], [4, 5])
    page = database.reads.snapshots_page("t", 4)
    more = database.reads.snapshots_page("t", 4, after_id=page[-1].id)
    assert [s.progress for s in page + more] == [0, 1, 2, 3, 4, 5]


class TickingClock(FakeClock):
    """A second later at every reading: each batch of a streamed add reads it once."""

    def now(self) -> datetime:
        self.advance(1)
        return self.current


def test_a_streamed_add_writes_each_batch_at_its_own_time_and_counts_what_was_there(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IDs go in batches, each registered when it is written; IDs registered before, or
    earlier in the same input, count as existing; label and metadata go with every new one."""
    monkeypatch.setattr(task_store, "ADD_BATCH", 3)
    database.tasks.add_tasks(["c"], None, NOW)
    clock = TickingClock(NOW)
    ids = iter(["a", "b", "c", "e", "d", "a", "f"])
    count = database.tasks.add_stream(ids, "L", {"user": 42}, clock)
    assert (count.added, count.existing) == (5, 2)
    listed = list(database.reads.stream(TaskFilter(label="L"), batch=2))
    assert [task.task_id for task in listed] == ["f", "e", "d", "b", "a"]
    second = timedelta(seconds=1)
    times = {task.task_id: task.registered_at for task in listed}
    assert times == {"a": NOW + second, "b": NOW + second, "d": NOW + 2 * second} | {
        "e": NOW + 2 * second,
        "f": NOW + 3 * second,
    }
    assert {task.metadata["user"] for task in listed} == {42}
    assert all(task.next_poll_at == task.registered_at for task in listed)


def test_counting_and_streaming_after_a_position(database: Database) -> None:
    """What is left after a page's last task: counted, and streamed page after page."""
    for minute in range(10):
        database.tasks.add_tasks([f"t{minute}"], None, NOW + timedelta(minutes=minute))
    database.tasks.remove_tasks(["t2", "t5"], NOW, channels=())
    t6 = Position(NOW + timedelta(minutes=6), "t6")
    assert database.reads.count(TaskFilter(), t6) == 6
    assert database.reads.count(TaskFilter(finished=False), t6) == 4
    after = [task.task_id for task in database.reads.stream(TaskFilter(), batch=2, after=t6)]
    assert after == ["t5", "t4", "t3", "t2", "t1", "t0"]


def test_a_history_is_paged_in_order_through_equal_times(database: Database) -> None:
    """Snapshots polled at the same instant keep their order across pages, from the start,
    for the first N and for the last N."""
    database.tasks.add_tasks(["t"], None, NOW)
    with database.engine.begin() as connection:
        connection.execute(
            snapshots.insert(),
            [
                {"task_id": "t", "polled_at": NOW + timedelta(seconds=i // 3), "progress": i}
                for i in range(10)
            ],
        )

    def progress(**part: int) -> list[int | None]:
        return [s.progress for s in database.reads.stream_history("t", batch=2, **part)]

    assert progress() == list(range(10))
    assert progress(first=5) == [0, 1, 2, 3, 4]
    assert progress(last=4) == [6, 7, 8, 9]
    assert progress(last=20) == list(range(10))
    assert progress(first=0) == progress(last=0) == []


def test_ids_added_in_any_order_are_written_in_order(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Tracker.add_stream` sorts what it is given, a run at a time in memory and merged from
    disk, so each batch written holds neighbouring IDs: every ID is registered once,
    duplicates and IDs registered before count as existing, and the batches' IDs follow each
    other (what makes IDs in random order as fast to add as IDs in order)."""
    monkeypatch.setattr(python_api, "SORTED_RUN", 4)
    monkeypatch.setattr(task_store, "ADD_BATCH", 5)
    written: list[list[str]] = []
    insert = TaskStore._insert

    def recording(self: TaskStore, connection: Any, task_ids: list[str], *args: Any) -> int:
        written.append(sorted(task_ids))
        return insert(self, connection, task_ids, *args)

    monkeypatch.setattr(TaskStore, "_insert", recording)
    ids = [f"video_{n:02d}" for n in random.Random(3).sample(range(30), 30)]
    with Tracker(database_url) as tracker:
        tracker.add(["video_07"])
        written.clear()
        count = tracker.add_stream([*ids, "video_12", "video_29"])
        registered = sorted(task.task_id for task in tracker.tasks())
    assert (count.added, count.existing) == (29, 3)
    assert registered == sorted(ids)
    given = sorted([*ids, "video_12", "video_29"])
    assert [task_id for batch in written for task_id in batch] == given
