"""The orders a list of tasks takes (``TaskOrder``), and where a page of one starts: a row value
after the last task shown, so that each page reads only its own rows, however deep it is."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Text, func, literal, or_, tuple_
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


def order_by(order: TaskOrder) -> list[UnaryExpression[Any]]:
    def way(column: ColumnElement[Any]) -> UnaryExpression[Any]:
        return column.desc() if order.descending else column.asc()

    ties = [way(column) for column in _TIE]
    if order.key is SortKey.REGISTERED_AT:
        return ties
    return [way(sort_key(order.key)).nulls_last(), *ties]


def after(position: Position | None, order: TaskOrder) -> list[ColumnElement[bool]]:
    """Tasks after ``position`` in ``order``: those past its value, then (tasks without one
    coming last) those of no value at all."""
    if position is None:
        return []
    beyond = operator.lt if order.descending else operator.gt
    tie = beyond(tuple_(*_TIE), literal_tuple(_TIE, (position.registered_at, position.task_id)))
    if order.key is SortKey.REGISTERED_AT:
        return [tie]
    key = sort_key(order.key)
    if position.value is None:
        return [key.is_(None), tie]
    value: ColumnElement[Any]
    if order.key is SortKey.STATUS:
        value = func.lower(literal(position.value, Text))
    else:
        value = literal(position.value, tasks.c[order.key.value].type)
    here = literal_tuple(_TIE, (position.registered_at, position.task_id)).clauses
    return [or_(key.is_(None), beyond(tuple_(key, *_TIE), tuple_(value, *here)))]


def literal_tuple(columns: Sequence[Any], values: Sequence[Any]) -> Any:
    """``values`` as a row value to compare with ``columns``, each bound as its column's type
    (on SQLite a timestamp then compares as the text it is stored as)."""
    return tuple_(
        *(literal(value, column.type) for column, value in zip(columns, values, strict=True))
    )
