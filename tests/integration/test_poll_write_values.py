"""What a poll's write carries reaches the task row exactly, and a claim gives back the row as
stored, on both databases. The tasks of a write are updated by one statement, its values sent
as the text of arrays that tracker writes itself on PostgreSQL and as one JSON array on SQLite,
which is also how SQLite's claims read their rows: text that either quotes, escapes or reads as
NULL must come back as it went in."""

from __future__ import annotations

import random
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from tracker.core.models import ClaimedTask, Failure, FetchResult
from tracker.core.video import Video
from tracker.daemon.poller import Policy, decide
from tracker.store import Database, bulk
from tracker.store.schema import snapshots

NOW = datetime(2026, 3, 1, 8, 30, 0, 123456, tzinfo=UTC)
POLICY = Policy(interval=10, give_up_after=3600, request_timeout=5)
AWKWARD = [
    "",
    "NULL",
    "null",
    "a,b",
    "{braced}",
    'say "hi"',
    "back\\slash\\",
    '\\"',
    "  padded  ",
    "line\nbreak\ttab",
    "ünïcødé 視頻",
]


@pytest.mark.parametrize("text", AWKWARD)
def test_text_values_come_back_as_they_went_in(database: Database, text: str) -> None:
    """Answered and unanswered polls in one write: model, size and seconds of the answered,
    the last error of the unanswered, each exactly as given."""
    database.tasks.add_tasks(["answered", "failed"], None, NOW)
    claimed = {
        task.task_id: task
        for task in database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 10)
    }
    video = Video("in_progress", 40, model=text, seconds=text, size=text)
    answer = FetchResult(200, 1, "{}", video, None)
    failure = FetchResult.failed(Failure.CONNECTION, text, 1)
    records = [
        decide(claimed["answered"], answer, NOW, POLICY, random.Random(1)),
        decide(claimed["failed"], failure, NOW, POLICY, random.Random(1)),
    ]
    assert database.polls.record_polls("d", records) == 2
    stored = {task.task_id: task for task in database.reads.tasks()}
    assert (stored["answered"].model, stored["answered"].seconds, stored["answered"].size) == (
        text,
        text,
        text,
    )
    assert stored["failed"].last_error == records[1].last_error
    assert text in (stored["failed"].last_error or "")


def test_times_and_flags_come_back_as_they_went_in(database: Database) -> None:
    """Times given in another offset are the same moments, to the microsecond; a finishing
    poll's flag and reason, and NULLs where an answer left a field out."""
    database.tasks.add_tasks(["done"], None, NOW)
    [claimed] = database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 1)
    elsewhere = timezone(timedelta(hours=-7, minutes=-30))
    created = datetime(2026, 2, 28, 23, 59, 59, 999999, tzinfo=elsewhere)
    video = Video("completed", 100, created_at=created, completed_at=NOW)
    record = decide(claimed, FetchResult(200, 1, "{}", video, None), NOW, POLICY, random.Random(1))
    assert database.polls.record_polls("d", [record]) == 1
    [stored] = database.reads.tasks()
    assert (stored.created_at, stored.completed_at, stored.expires_at) == (created, NOW, None)
    assert (stored.finished, stored.finish_reason, stored.finished_at) == (
        True,
        record.finish_reason,
        NOW,
    )
    assert (stored.last_polled_at, stored.model, stored.progress) == (NOW, None, 100)


def test_awkward_task_ids_owners_and_nulls_side_by_side_in_one_write(database: Database) -> None:
    """Task IDs and a lease owner that arrays must quote, several tasks in each statement,
    text beside NULL in one array: every task is written, each with its own values (a quoting
    slip here would match no row, and the poll would be dropped without an error)."""
    ids = ['say"hi"', "{a,b}", "NULL", "null", "plain"]
    owner = 'daemon "one", {x}'
    database.tasks.add_tasks(ids, None, NOW)
    claimed = database.polls.claim_due(owner, NOW, NOW + timedelta(seconds=60), 10)
    models = {task_id: (None if n % 2 else f"model of {task_id}") for n, task_id in enumerate(ids)}
    records = [
        decide(
            task,
            FetchResult(200, 1, "{}", Video("in_progress", 7, model=models[task.task_id]), None),
            NOW,
            POLICY,
            random.Random(1),
        )
        for task in claimed
    ]
    assert database.polls.record_polls(owner, records) == len(ids)
    stored = {task.task_id: task for task in database.reads.tasks()}
    assert {task_id: task.model for task_id, task in stored.items()} == models
    assert {(task.poll_count, task.lease_owner) for task in stored.values()} == {(1, None)}
    assert sorted(s.task_id for t in ids for s in database.reads.history(t)) == sorted(ids)


@pytest.mark.parametrize(
    "odd",
    [
        Video("in_progress", 5, model=5),  # type: ignore[arg-type]
        Video("in_progress", 5, model=["sora-2"]),  # type: ignore[arg-type]
        Video("in_progress", 5, model="sora\x00two"),
        Video("in\x00progress", 5),
    ],
    ids=["number", "list", "nul-in-model", "nul-in-status"],
)
def test_a_value_the_database_cannot_keep_is_refused_as_its_record_alone(
    database: Database, odd: Video
) -> None:
    """A value the write cannot carry as it is (a number or a list where text goes, or text
    with a NUL, which PostgreSQL refuses and SQLite's JSON functions would cut short) is an
    error like a value the database refuses: its record is stored as an error poll, the others
    as they came, rather than the value stored changed or the whole write failing again and
    again."""
    database.tasks.add_tasks(["odd", "fine"], None, NOW)
    claimed = {t.task_id: t for t in database.polls.claim_due("d", NOW, NOW, 10)}
    records = [
        decide(claimed[task_id], FetchResult(200, 1, "{}", video, None), NOW, POLICY, rng)
        for task_id, video, rng in (
            ("odd", odd, random.Random(1)),
            ("fine", Video("in_progress", 5, model="sora-2"), random.Random(2)),
        )
    ]
    assert database.polls.record_polls("d", records) == 2
    [odd_snapshot] = database.reads.history("odd")
    stored = {task.task_id: task for task in database.reads.tasks()}
    assert odd_snapshot.error["type"] == "unstorable"
    assert (stored["fine"].model, stored["odd"].model) == ("sora-2", None)
    assert (stored["fine"].status, stored["odd"].status) == ("in_progress", None)


def test_a_write_too_large_for_one_statement_goes_in_parts(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite takes no value over a gigabyte: the JSON of a write's rows past the limit is
    split, each part one statement, and every poll is written."""
    monkeypatch.setattr(bulk, "_MOST_JSON_CHARACTERS", 600)
    database = Database.open(sqlite_url)
    try:
        ids = [f"video_{n}" for n in range(9)]
        database.tasks.add_tasks(ids, None, NOW)
        claimed = database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 10)
        body = '{"object": "video", "status": "in_progress", "progress": 5}'
        records = [
            decide(task, FetchResult(200, 1, body, Video("in_progress", 5), None), NOW, POLICY, rng)
            for task, rng in zip(claimed, map(random.Random, range(9)), strict=True)
        ]
        statements: list[str] = []
        event.listen(
            database.engine,
            "before_cursor_execute",
            lambda _c, _cu, statement, *_: statements.append(statement),
        )
        assert database.polls.record_polls("d", records) == 9
        inserts = [s for s in statements if s.startswith("INSERT INTO snapshots")]
        assert len(inserts) > 2
        assert sorted(s.task_id for t in ids for s in database.reads.history(t)) == sorted(ids)
        assert {task.poll_count for task in database.reads.tasks()} == {1}
    finally:
        database.close()


def test_a_read_in_one_step_refuses_columns_json_would_not_carry_exactly(
    sqlite_url: str,
) -> None:
    """Through JSON a float keeps 15 digits and bytes do not go at all."""
    database = Database.open(sqlite_url)
    try:
        with database.engine.connect() as connection, pytest.raises(ValueError, match="exactly"):
            bulk.OneStepRead(select(snapshots.c.latency_ms), connection.dialect)
    finally:
        database.close()


def test_a_claim_gives_back_each_task_as_stored(database: Database) -> None:
    """Every field a claim reads, after a poll of each kind: text that JSON or arrays escape,
    a label and metadata with nested JSON, times to the microsecond, counts and NULLs; earliest
    due first."""
    metadata = {"prompt": 'say "hi"\n', "tags": ["視頻", None, 1.5], "nested": {"a": {}}}
    database.tasks.add_tasks(AWKWARD[4:7], "ünï \\ label", NOW, metadata, provider="relay")
    database.tasks.add_tasks(["bare"], None, NOW)
    first = database.polls.claim_due("d", NOW, NOW + timedelta(seconds=60), 10)
    answers = [
        FetchResult(200, 1, "{}", Video("in_progress", 40, model="m"), None),
        FetchResult.failed(Failure.CONNECTION, 'refused "\\"', 1),
    ]
    records = [
        decide(task, answers[n % 2], NOW, POLICY, random.Random(n)) for n, task in enumerate(first)
    ]
    assert database.polls.record_polls("d", records) == 4
    later = NOW + timedelta(hours=1)
    claimed = database.polls.claim_due("d", later, later + timedelta(seconds=60), 10)
    stored = {task.task_id: task for task in database.reads.tasks()}
    names = [field.name for field in fields(ClaimedTask)]
    assert [[getattr(task, name) for name in names] for task in claimed] == [
        [getattr(stored[task.task_id], name) for name in names]
        for task in sorted(claimed, key=lambda task: task.next_poll_at)
    ]
    assert {task.task_id for task in claimed} == {*AWKWARD[4:7], "bare"}
    assert {(t.label, t.provider) for t in claimed if t.metadata == metadata} == {
        ("ünï \\ label", "relay")
    }
    assert {t.status for t in claimed} == {"in_progress", None}
    assert {t.lease_owner for t in database.reads.tasks()} == {"d"}
