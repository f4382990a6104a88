"""Statements compiled once and run for many rows at a time, past SQLAlchemy's per-row
parameter processing, which cost more than the database's own work for the rows of a tick's
polls (docs/performance.md).

On PostgreSQL ``CopyRows`` inserts rows by COPY, and ``SetUpdate`` runs an UPDATE once for all
the rows, each parameter an array written as PostgreSQL's text for it. On SQLite ``JSONRows``
runs an INSERT or UPDATE once for all the rows, given as one JSON array, and
``OneStepRead`` reads a query's rows as one. Each parameter is converted by one plain
function chosen from its column's type when the statement is compiled: JSON as text, and on
SQLite timestamps and booleans too, and text checked for what JSON would not carry back whole;
for ``SetUpdate`` an array's elements (it takes no JSON). A parameter whose type is not known
refuses to compile, so a new column cannot slip through unconverted. Rows are read by their keys
as a tuple: every statement here has several.
"""

from __future__ import annotations

import copy
import json
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    Dialect,
    Float,
    Insert,
    Integer,
    LargeBinary,
    Select,
    String,
    Table,
    Text,
    Update,
    bindparam,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import column, visitors
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import NullType, TypeEngine

from tracker.store.schema import UTCDateTime, serialize_json
from tracker.store.timetext import in_utc


class CopyRows:
    """A PostgreSQL INSERT of many rows by one COPY, which takes columns and values only (no SQL
    expressions, no RETURNING or ON CONFLICT); rows are dicts keyed by column."""

    def __init__(self, table: Table, dialect: Dialect, keys: Sequence[str]) -> None:
        quoting = dialect.identifier_preparer
        columns = ", ".join(quoting.quote(name) for name in keys)
        self._copy = f"COPY {quoting.format_table(table)} ({columns}) FROM STDIN"
        self._values = _RowValues(keys, {name: table.c[name].type for name in keys}, dialect)

    def execute(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        with _driver_cursor(connection, self._copy) as cursor, cursor.copy(self._copy) as copy:
            for values in self._values(rows):
                copy.write_row(values)


class SetUpdate:
    """A PostgreSQL UPDATE run once for many rows: each parameter of a row becomes a column of
    ``unnest`` over one array a parameter, joined to the table by the statement's own WHERE.
    One statement, not one a row: PostgreSQL sets up its executor, the table's CHECK
    constraints and its partial indexes' predicates for each statement it runs
    (docs/performance.md)."""

    def __init__(self, statement: Update, dialect: Dialect, keys: Sequence[str]) -> None:
        """``statement``: an UPDATE whose parameters are ``keys``, with a RETURNING. Every
        condition on the table's columns is better one on the rows' (a parameter a row): the
        planner takes a parameter's test for a cheap filter to read the table by."""
        types = _parameter_types(statement)
        # Arrays of unsized text: a cast to VARCHAR(n) would cut a longer value short, where
        # the column refuses it.
        arrayed = {
            name: Text() if isinstance(types[name], String) else types[name] for name in keys
        }
        rows = (
            func.unnest(*(bindparam(name, type_=ARRAY(arrayed[name])) for name in keys))
            .table_valued(*(column(name, arrayed[name]) for name in keys))
            .render_derived(name="polled")
        )

        def from_rows(element: Any, **_: Any) -> Any:
            if isinstance(element, BindParameter) and element.key in arrayed:
                return rows.c[element.key]
            return None

        set_based = cast(Update, visitors.replacement_traverse(statement, {}, from_rows))
        compiled = set_based.compile(dialect=_positional(dialect))
        self._sql = compiled.string
        self._order = _parameters(compiled, keys)
        self._elements = {name: _array_element(name, types[name]) for name in keys}

    def returned(self, connection: Connection, rows: list[dict[str, Any]]) -> list[Any]:
        """Run the statement for ``rows``; the first column of each row it returned."""
        # Each array as the text PostgreSQL reads it, made here: the driver's dumping of a list
        # looks up a dumper for every element and encodes each one apart, which took a third
        # of the writing thread's time (docs/performance.md).
        params = []
        for name in self._order:
            element = self._elements[name]
            texts = ["NULL" if (value := row[name]) is None else element(value) for row in rows]
            params.append("{" + ",".join(texts) + "}")
        return list(connection.exec_driver_sql(self._sql, tuple(params)).scalars())


class JSONRows:
    """A SQLite INSERT or UPDATE run once for many rows, given as one JSON array of arrays that
    the statement reads with ``json_each``. The driver runs a statement in steps and lets the
    interpreter's lock go for each; executemany took a step a row, and under a busy event loop
    each step waited to take the lock back, so the writing thread's work went on while the
    event loop stood still instead of beside it (docs/performance.md). Here the whole
    statement is one step."""

    def __init__(self, statement: Insert | Update, dialect: Dialect, keys: Sequence[str]) -> None:
        """``statement``: an INSERT of exactly ``keys`` (a table's insert()), or an UPDATE whose
        parameters are ``keys``."""
        elements = json_elements("rows")
        rows = select(
            *(
                func.json_extract(elements.c.value, literal_column(f"'$[{index}]'")).label(name)
                for index, name in enumerate(keys)
            )
        ).subquery("polled")
        if isinstance(statement, Insert):
            # Without the table's Python-side defaults, which would be parameters of their own.
            one_step: Any = statement.from_select(list(keys), select(rows), include_defaults=False)
            types = {name: statement.table.c[name].type for name in keys}
        else:
            types = _parameter_types(statement)

            def from_rows(element: Any, **_: Any) -> Any:
                if isinstance(element, BindParameter) and element.key in types:
                    return rows.c[element.key]
                return None

            one_step = visitors.replacement_traverse(statement, {}, from_rows)
        if set(types) != set(keys):
            raise ValueError(f"statement parameters {sorted(types)} are not the row keys {keys}")
        compiled = one_step.compile(dialect=_positional(dialect))
        _parameters(compiled, ["rows"])
        self._sql = compiled.string
        self._values = _RowValues(keys, types, dialect)

    def execute(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        try:
            text = json.dumps(
                self._values(rows), ensure_ascii=False, allow_nan=False, separators=(",", ":")
            )
        except TypeError as exc:  # a value of a type JSON has not: refused, as the driver did
            raise ValueError(str(exc)) from exc
        if len(text) > _MOST_JSON_CHARACTERS and len(rows) > 1:
            # SQLite takes no value over a gigabyte; a write of many large answers goes in parts.
            half = len(rows) // 2
            self.execute(connection, rows[:half])
            self.execute(connection, rows[half:])
            return
        connection.exec_driver_sql(self._sql, (text,))


# At most four bytes a character in UTF-8: well under SQLite's limit on a value's length.
_MOST_JSON_CHARACTERS = 100_000_000


def json_elements(name: str) -> Any:
    """The elements of the JSON array given as parameter ``name``, as a table (SQLite)."""
    return func.json_each(bindparam(name, type_=Text())).table_valued("value")


def one_of_json_list(column: Any, name: str) -> Any:
    """``column`` is one of the JSON array given as parameter ``name`` (SQLite)."""
    return column.in_(select(json_elements(name)))


class OneStepRead:
    """A SQLite query whose rows are read as one JSON array instead of a step a row (see
    ``JSONRows``), each value turned into Python by its column's type as a row's would be.
    JSON would carry a float to 15 digits only, and no bytes: columns of those are refused."""

    def __init__(self, query: Select[Any], dialect: Dialect) -> None:
        self._conversions = []
        for index, selected in enumerate(query.selected_columns):
            if isinstance(selected.type, Float | LargeBinary):
                raise ValueError(f"{selected} is not read back exactly through JSON")
            processor = selected.type.dialect_impl(dialect).result_processor(dialect, None)
            if processor is not None:
                self._conversions.append((index, processor))
        columns = query.subquery("picked").columns
        self._statement = select(func.json_group_array(func.json_array(*columns)))

    def rows(
        self, connection: Connection, parameters: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        rows = json.loads(connection.execute(self._statement, parameters).scalar_one())
        for row in rows:
            for index, processor in self._conversions:
                if (value := row[index]) is not None:
                    row[index] = processor(value)
        return [tuple(row) for row in rows]


def _parameter_types(statement: Any) -> dict[str, TypeEngine[Any]]:
    types: dict[str, TypeEngine[Any]] = {}

    def typed(parameter: BindParameter[Any]) -> None:
        types[parameter.key] = parameter.type

    visitors.traverse(statement, {}, {"bindparam": typed})
    return types


class _RowValues:
    """The values of row dicts in ``keys``' order, each converted by one plain function chosen
    from its type when the statement is compiled (``_conversion``)."""

    def __init__(
        self, keys: Sequence[str], types: Mapping[str, TypeEngine[Any]], dialect: Dialect
    ) -> None:
        self._values = operator.itemgetter(*keys)
        self._conversions = [
            (index, conversion)
            for index, name in enumerate(keys)
            if (conversion := _conversion(name, types[name], dialect)) is not None
        ]

    def __call__(self, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        params = []
        for row in rows:
            values = list(self._values(row))
            for index, conversion in self._conversions:
                values[index] = conversion(values[index])
            params.append(tuple(values))
        return params


def _positional(dialect: Dialect) -> Dialect:
    """``dialect``, compiling parameters as the driver takes them in order."""
    positional = copy.copy(dialect)
    positional.paramstyle = "qmark" if dialect.name == "sqlite" else "format"
    positional.positional = True
    return positional


def _parameters(compiled: Any, keys: Sequence[str]) -> list[str]:
    """The names of ``compiled``'s parameters in order, which must be ``keys``."""
    order: list[str] = compiled.positiontup or []
    if set(order) != set(keys):
        raise ValueError(f"statement parameters {order} are not the row keys {keys}")
    return order


@contextmanager
def _driver_cursor(connection: Connection, statement: str) -> Iterator[Any]:
    """A cursor of the driver's own, for what SQLAlchemy does not carry (COPY); its errors
    raised as SQLAlchemy's, as a statement's are (a value the server refuses is a DataError
    to its callers, a lost connection an OperationalError)."""
    dbapi = connection.dialect.loaded_dbapi
    driver: Any = connection.connection.dbapi_connection
    try:
        with driver.cursor() as cursor:
            yield cursor
    except dbapi.Error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc


def _conversion(name: str, type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a value of ``type_`` reaches the driver, or None when the driver takes it as is."""
    if isinstance(type_, NullType):
        raise ValueError(f"parameter {name!r} has no type: give its bindparam one")
    if dialect.name != "sqlite":
        return _json_text if isinstance(type_, JSON) else None
    # SQLite's values go through JSON (JSONRows).
    if isinstance(type_, JSON):
        return _sqlite_json_text
    if isinstance(type_, UTCDateTime):
        return UTCDateTime.sqlite_text
    if isinstance(type_, Boolean):
        return int
    if isinstance(type_, String):
        return _sqlite_text
    return None


def _json_text(value: Any) -> str | None:
    return None if value is None else serialize_json(value)


def _sqlite_json_text(value: Any) -> str | None:
    return None if value is None else _sqlite_text(serialize_json(value))


def _sqlite_text(value: str | None) -> str | None:
    """Text as SQLite's JSON functions read it back whole (they end text at a NUL); other
    values refused with ValueError, as PostgreSQL's array text refuses them, instead of stored
    as their JSON."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"not text: {type(value).__name__}")
    if "\x00" in value:
        raise ValueError("text with a NUL character, where SQLite's JSON functions end it")
    return value


def _array_element(name: str, type_: TypeEngine[Any]) -> Callable[[Any], str]:
    """How a value of ``type_`` is written as an element of a PostgreSQL array's text. A value
    of another type raises ValueError, which the write's fallback takes as a record the
    database refuses (``PollStore.record_polls``), as it took the driver's error before."""
    if isinstance(type_, NullType):
        raise ValueError(f"parameter {name!r} has no type: give its bindparam one")
    if isinstance(type_, UTCDateTime):
        return _timestamp_element
    if isinstance(type_, Boolean):
        return _boolean_element
    if isinstance(type_, Integer):
        return _integer_element
    if isinstance(type_, String):
        return _text_element
    raise ValueError(f"parameter {name!r} of type {type_!r} has no array element text")


def _text_element(value: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not text: {type(value).__name__}")
    # Quoted, a value is taken as it is (spaces, commas, braces, the word NULL) but for a
    # backslash or a double quote, which are escaped by a backslash.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _timestamp_element(value: datetime) -> str:
    if not isinstance(value, datetime):
        raise ValueError(f"not a datetime: {type(value).__name__}")
    return in_utc(value).isoformat()


def _boolean_element(value: bool) -> str:
    if value is True:
        return "t"
    if value is False:
        return "f"
    raise ValueError(f"not a boolean: {type(value).__name__}")


def _integer_element(value: int) -> str:
    if not isinstance(value, int):
        raise ValueError(f"not an integer: {type(value).__name__}")
    # int's own text, not an int subclass's (True, an IntEnum member).
    return int.__repr__(value)
