"""Writing a tick's polls, by statements compiled once (``bulk``): the tasks of a tick are
updated by one statement for each kind of poll (answered or not, and on SQLite those that keep
their status). On SQLite the statements take their rows as one JSON array, which the driver
runs in one step. On PostgreSQL the snapshots go in by COPY, which took a tenth off its polls'
cost, and each task's UPDATE checks its lease itself and returns the tasks that held
(docs/performance.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from sqlalchemy import Dialect, Text, bindparam, func, literal_column, null, select
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection

from tracker.core.models import FetchResult, PollRecord
from tracker.core.video import is_running
from tracker.store.bulk import CopyRows, JSONRows, OneStepRead, SetUpdate, one_of_json_list
from tracker.store.schema import RawJSON, snapshots, tasks


def _typed(name: str, column: str) -> Any:
    return bindparam(name, type_=tasks.c[column].type)


_POLLED = {
    "last_polled_at": _typed("b_polled_at", "last_polled_at"),
    "next_poll_at": _typed("b_next_poll_at", "next_poll_at"),
    "poll_count": tasks.c.poll_count + literal_column("1"),
    "error_count": _typed("b_error_count", "error_count"),
    "not_found_count": _typed("b_not_found_count", "not_found_count"),
    "last_error": _typed("b_last_error", "last_error"),
    "lease_owner": null(),
    "lease_expires_at": null(),
}
_FINISHING = {
    "finished": _typed("b_finished", "finished"),
    "finish_reason": _typed("b_finish_reason", "finish_reason"),
    "finished_at": _typed("b_finished_at", "finished_at"),
}


def _keep_known(column: str) -> Any:
    """Relays omit fields on some answers: a missing value keeps the one seen before."""
    return func.coalesce(_typed(f"b_{column}", column), tasks.c[column])


def _keep_first(column: str) -> Any:
    """A moment seen once: the first poll to see it sets it, later ones leave it."""
    return func.coalesce(tasks.c[column], _typed(f"b_{column}", column))


_WHERE_TASK = tasks.c.task_id == bindparam("b_task_id", type_=Text())
_ANSWER = {
    "progress": _keep_known("progress"),
    "model": _keep_known("model"),
    "seconds": _keep_known("seconds"),
    "size": _keep_known("size"),
    "created_at": _keep_known("created_at"),
    "completed_at": _keep_known("completed_at"),
    "expires_at": _keep_known("expires_at"),
    "first_running_at": _keep_first("first_running_at"),
}
_UPDATE_ANSWERED = (
    sql_update(tasks)
    .where(_WHERE_TASK)
    .values(status=_typed("b_status", "status"), **_ANSWER, **_POLLED, **_FINISHING)
)
# Most polls see the status the task had and do not finish it. Leaving status and the finish
# columns out of their UPDATE spares SQLite the indexes on them (the status index and the
# partial indexes on unfinished tasks), which it rewrites whenever a column they use is set.
# PostgreSQL gains nothing by it: a poll moves next_poll_at, which is indexed, so the update is
# never HOT and every index gets its new entry anyway (measured: no less work, docs/performance.md).
_UPDATE_STEADY = sql_update(tasks).where(_WHERE_TASK).values(**_ANSWER, **_POLLED)
_UPDATE_UNANSWERED = sql_update(tasks).where(_WHERE_TASK).values(**_POLLED, **_FINISHING)


def _if_held(statement: Any) -> Any:
    """``statement`` for a task its owner still holds, returning the task's ID if it was."""
    owner = bindparam("b_owner", type_=tasks.c.lease_owner.type)
    return _returning(statement.where(tasks.c.lease_owner == owner))


def _returning(statement: Any) -> Any:
    return statement.returning(tasks.c.task_id)


_SNAPSHOT_KEYS = (
    "task_id",
    "polled_at",
    "http_status",
    "status",
    "progress",
    "error",
    "body",
    "finished",
    "latency_ms",
    "kept",
)
_POLLED_KEYS = (
    "b_task_id",
    "b_polled_at",
    "b_next_poll_at",
    "b_error_count",
    "b_not_found_count",
    "b_last_error",
)
_FINISHING_KEYS = ("b_finished", "b_finish_reason", "b_finished_at")
_ANSWER_KEYS = (
    "b_progress",
    "b_model",
    "b_seconds",
    "b_size",
    "b_created_at",
    "b_completed_at",
    "b_expires_at",
    "b_first_running_at",
)


_Kind = Literal["answered", "steady", "unanswered"]
_ANSWERED_KEYS = (*_POLLED_KEYS, *_FINISHING_KEYS, "b_status", *_ANSWER_KEYS)
_UNANSWERED_KEYS = (*_POLLED_KEYS, *_FINISHING_KEYS)


class PollWrites:
    """The statements that write a batch of polls, compiled for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self._insert_snapshots: CopyRows | JSONRows
        self._held_statuses: OneStepRead  # SQLite's
        # PostgreSQL: one UPDATE for all the tasks of a kind, which checks each lease itself
        # (locking the row, as a SELECT … FOR UPDATE before it did at a cost of its own) and
        # returns the tasks that held. SQLite locks the whole file for the transaction, and
        # reads the held tasks' statuses first, to give polls that keep theirs a narrower
        # statement.
        self._set_updates: dict[_Kind, SetUpdate] = {}
        self._later_turn_updates: dict[_Kind, SetUpdate] = {}
        self._row_updates: dict[_Kind, JSONRows] = {}
        if dialect.name == "postgresql":
            self._insert_snapshots = CopyRows(snapshots, dialect, _SNAPSHOT_KEYS)
            self._set_updates = {
                "answered": SetUpdate(
                    _if_held(_UPDATE_ANSWERED), dialect, (*_ANSWERED_KEYS, "b_owner")
                ),
                "unanswered": SetUpdate(
                    _if_held(_UPDATE_UNANSWERED), dialect, (*_UNANSWERED_KEYS, "b_owner")
                ),
            }
            # A task's later polls in the same write: its first found it held and locked its
            # row (and gave the lease up), so they check no lease.
            self._later_turn_updates = {
                "answered": SetUpdate(_returning(_UPDATE_ANSWERED), dialect, _ANSWERED_KEYS),
                "unanswered": SetUpdate(_returning(_UPDATE_UNANSWERED), dialect, _UNANSWERED_KEYS),
            }
        else:
            self._row_updates = {
                "answered": JSONRows(_UPDATE_ANSWERED, dialect, _ANSWERED_KEYS),
                "steady": JSONRows(_UPDATE_STEADY, dialect, (*_POLLED_KEYS, *_ANSWER_KEYS)),
                "unanswered": JSONRows(_UPDATE_UNANSWERED, dialect, _UNANSWERED_KEYS),
            }
            self._insert_snapshots = JSONRows(snapshots.insert(), dialect, _SNAPSHOT_KEYS)
            # The stored status of each task that the owner holds, read in one step.
            self._held_statuses = OneStepRead(
                select(tasks.c.task_id, tasks.c.status).where(
                    one_of_json_list(tasks.c.task_id, "ids"),
                    tasks.c.lease_owner == bindparam("owner", type_=Text()),
                ),
                dialect,
            )

    def write_held(
        self, connection: Connection, owner: str, records: Sequence[PollRecord]
    ) -> list[PollRecord]:
        """Write those of ``records`` whose tasks ``owner`` still holds, and return them: all
        of a task's, in order, but those after the poll that finished it (``_turns``)."""
        if not records:
            return []
        turns = _turns(records)
        if self._set_updates:
            held: set[str] = set()
            for kind, rows in _task_rows(turns[0], None, owner).items():
                held.update(self._set_updates[kind].returned(connection, rows))
            for turn in turns[1:]:
                again = [record for record in turn if record.task_id in held]
                for kind, rows in _task_rows(again, None, None).items():
                    # Every row matches: the first turn locked each of these tasks.
                    self._later_turn_updates[kind].returned(connection, rows)
        else:
            ids = json.dumps([record.task_id for record in records], ensure_ascii=False)
            statuses = dict(self._held_statuses.rows(connection, {"ids": ids, "owner": owner}))
            held = set(statuses)
            for turn in turns:
                written = [record for record in turn if record.task_id in held]
                for kind, rows in _task_rows(written, statuses, None).items():
                    self._row_updates[kind].execute(connection, rows)
                statuses.update(
                    (r.task_id, r.fetch.video.status) for r in written if r.fetch.video is not None
                )
        chosen = {id(record) for turn in turns for record in turn}
        kept = [r for r in records if id(r) in chosen and r.task_id in held]
        stored = [_snapshot_row(r) for r in kept if r.store_snapshot]
        if stored:
            self._insert_snapshots.execute(connection, stored)
        return kept


def _turns(records: Sequence[PollRecord]) -> list[list[PollRecord]]:
    """``records`` in turns that hold each task once, its polls in the order they came, none
    after the one that finished it (a finished task's history ends there). A task is polled
    twice before a write only when a write failed for longer than its lease, and it was
    claimed and polled again meanwhile. Its polls must be written in order: a set-based
    statement updates a row once however many of its rows join it, and the statements of
    different kinds of poll run one after the other; SQLite chooses its statement by the
    status the poll before left."""
    turns: list[list[PollRecord]] = []
    polls: dict[str, int] = {}
    finished: set[str] = set()
    for record in records:
        if record.task_id in finished:
            continue
        turn = polls.get(record.task_id, 0)
        polls[record.task_id] = turn + 1
        if turn == len(turns):
            turns.append([])
        turns[turn].append(record)
        if record.finished:
            finished.add(record.task_id)
    return turns


def _task_rows(
    records: Sequence[PollRecord], statuses: Mapping[str, str | None] | None, owner: str | None
) -> dict[_Kind, list[dict[str, Any]]]:
    """The rows of ``records``' task UPDATEs (each task once) by the statement that writes
    them; with each task's status as stored before them in ``statuses``, a poll that keeps it
    is ``steady`` (SQLite's narrower statement); each with the lease ``owner`` to check, if
    given."""
    rows: dict[_Kind, list[dict[str, Any]]] = {}
    for record in records:
        video = record.fetch.video
        kind: _Kind
        if video is None:
            kind = "unanswered"
        elif statuses is None or record.finished or video.status != statuses[record.task_id]:
            kind = "answered"
        else:
            kind = "steady"
        row = _task_row(record)
        if owner is not None:
            row["b_owner"] = owner
        rows.setdefault(kind, []).append(row)
    return rows


def without_answer(record: PollRecord, exc: Exception) -> PollRecord:
    """The record as an error poll, keeping only what any database can store."""
    error = {
        "type": "unstorable",
        "message": f"the answer could not be stored: {type(exc).__name__}",
    }
    fetch = FetchResult(record.fetch.http_status, record.fetch.latency_ms, None, None, error)
    return replace(record, fetch=fetch, last_error=error["message"])


def _snapshot_row(record: PollRecord) -> dict[str, Any]:
    fetch = record.fetch
    video = fetch.video
    return {
        "task_id": record.task_id,
        "polled_at": record.polled_at,
        "http_status": fetch.http_status,
        "status": video.status if video else None,
        "progress": video.progress if video else None,
        "error": record.snapshot_error,
        "body": RawJSON(fetch.body) if fetch.body is not None else None,
        "finished": record.finished,
        "latency_ms": fetch.latency_ms,
        "kept": record.kept,
    }


def _task_row(record: PollRecord) -> dict[str, Any]:
    video = record.fetch.video
    finished_at = record.polled_at if record.finished else None
    row: dict[str, Any] = {
        "b_task_id": record.task_id,
        "b_polled_at": record.polled_at,
        # A finished task is never polled again: its next_poll_at is the time it finished, as
        # every statement that finishes a task sets it (docs/tables.md).
        "b_next_poll_at": finished_at or record.next_poll_at,
        "b_error_count": record.error_count,
        "b_not_found_count": record.not_found_count,
        "b_last_error": record.last_error,
        "b_finished": record.finished,
        "b_finish_reason": record.finish_reason.value if record.finish_reason else None,
        "b_finished_at": finished_at,
    }
    if video is not None:
        row.update(
            b_status=video.status,
            b_progress=video.progress,
            b_model=video.model,
            b_seconds=video.seconds,
            b_size=video.size,
            b_created_at=video.created_at,
            b_completed_at=video.completed_at,
            b_expires_at=video.expires_at,
            b_first_running_at=record.polled_at if is_running(video.status) else None,
        )
    return row
