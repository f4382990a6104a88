"""The orders a list of tasks takes (``TaskOrder``), and where a page of one starts: a row value
after the last task shown, so that each page reads only its own rows, through an index in that
order, however deep it is.

Sorted by a column that may be empty, a page is read in two parts: the tasks with a value, in
the column's order, then (when they run out) those without, by registration. Each part is in
an order an index gives as it is, on either database, which one order with the empty values
last would not be: PostgreSQL's index puts them last one way and first the other, SQLite's the
other way round."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Text, func, literal, tuple_
from sqlalchemy.sql.elements import UnaryExpression

from tracker.core.models import Position, SortKey, TaskOrder
from tracker.store.schema import tasks

# Tasks of one value of the key follow each other by registration, then by ID.
_TIE = (tasks.c.registered_at, tasks.c.task_id)


def sort_key(key: SortKey) -> ColumnElement[Any]:
    """The expression a list is sorted by: a status in any case, by the index on it."""
    if key is SortKey.STATUS:
        return func.lower(tasks.c.status)
    return tasks.c[key.value]


def _way(order: TaskOrder, column: ColumnElement[Any]) -> UnaryExpression[Any]:
    return column.desc() if order.descending else column.asc()


def valued_order(order: TaskOrder) -> list[UnaryExpression[Any]]:
    """The order of the tasks with a value (every task, by registration)."""
    columns = _TIE if order.key is SortKey.REGISTERED_AT else (sort_key(order.key), *_TIE)
    return [_way(order, column) for column in columns]


def unvalued_order(order: TaskOrder) -> list[UnaryExpression[Any]]:
    return [_way(order, column) for column in _TIE]


def valued_after(position: Position | None, order: TaskOrder) -> list[ColumnElement[bool]] | None:
    """The tasks with a value after ``position``; None when it is past them all already."""
    if order.key is SortKey.REGISTERED_AT:
        return registered_after(position, order)
    key = sort_key(order.key)
    if position is None:
        return [key.is_not(None)]
    if position.value is None:
        return None
    value: ColumnElement[Any]
    if order.key is SortKey.STATUS:
        value = func.lower(literal(position.value, Text))
    else:
        value = literal(position.value, tasks.c[order.key.value].type)
    here = literal_tuple(_TIE, (position.registered_at, position.task_id)).clauses
    beyond = operator.lt if order.descending else operator.gt
    return [key.is_not(None), beyond(tuple_(key, *_TIE), tuple_(value, *here))]


def unvalued_after(position: Position | None, order: TaskOrder) -> list[ColumnElement[bool]]:
    """The tasks without a value after ``position`` (all of them after one with a value)."""
    empty = sort_key(order.key).is_(None)
    if position is None or position.value is not None:
        return [empty]
    return [empty, *registered_after(position, order)]


def registered_after(position: Position | None, order: TaskOrder) -> list[ColumnElement[bool]]:
    """The tasks after ``position`` by registration, ``order``'s way."""
    if position is None:
        return []
    beyond = operator.lt if order.descending else operator.gt
    return [beyond(tuple_(*_TIE), literal_tuple(_TIE, (position.registered_at, position.task_id)))]


def literal_tuple(columns: Sequence[Any], values: Sequence[Any]) -> Any:
    """``values`` as a row value to compare with ``columns``, each bound as its column's type
    (on SQLite a timestamp then compares as the text it is stored as)."""
    return tuple_(
        *(literal(value, column.type) for column, value in zip(columns, values, strict=True))
    )
