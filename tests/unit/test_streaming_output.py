"""Output written as it is read: tables whose widths come from the first rows, JSON arrays and
JSON lines a row at a time, and task IDs read from a file in bounded pieces."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tracker.cli import render
from tracker.cli.id_files import BLOCK, LINE_LIMIT, IDLines
from tracker.core.ids import check_task_id
from tracker.core.metadata import MAX_BYTES, check_metadata, parse_metadata
from tracker.core.models import Task
from tracker.errors import InvalidTaskIDError, UsageError


def test_a_streamed_table_takes_its_widths_from_the_first_rows() -> None:
    """The first rows set the widths; a wider cell further on widens only its own line."""
    rows = [["a", 1], ["bbb", 22], ["c" * 10, 3]]
    lines = list(render.table_lines(["id", "n"], iter(rows), sample=2))
    assert lines == ["id   n", "a    1", "bbb  22", "cccccccccc  3"]
    assert render.table(["id", "n"], rows).splitlines()[1] == "a           1"


def test_json_is_written_row_by_row_and_not_before_the_first_row() -> None:
    """An array (or JSON lines) of the rows; an error reading the first row leaves nothing."""
    rows = [{"at": datetime(2026, 1, 1, tzinfo=UTC), "n": Decimal("2"), "x": float("nan")}]
    out = io.StringIO()
    assert render.write_json(iter(rows * 2), out) == 2
    assert (
        json.loads(out.getvalue())
        == [{"at": "2026-01-01T00:00:00.000000Z", "n": 2, "x": "nan"}] * 2
    )
    lines = io.StringIO()
    render.write_json(iter(rows), lines, lines=True)
    assert [json.loads(line) for line in lines.getvalue().splitlines()] == json.loads(
        out.getvalue()
    )[:1]

    def failing() -> object:
        raise UsageError("unknown task")
        yield

    untouched = io.StringIO()
    with pytest.raises(UsageError):
        render.write_json(failing(), untouched)  # type: ignore[arg-type]
    assert untouched.getvalue() == ""
    empty = io.StringIO()
    render.write_json(iter([]), empty)
    assert json.loads(empty.getvalue()) == []


def test_a_record_row_has_every_field_in_order() -> None:
    """Rows of tasks are keyed by the column names, as dataclasses.asdict would give them."""
    task = Task.registered("t", "l", datetime(2026, 1, 1, tzinfo=UTC), metadata={"user": 42})
    assert list(render.record_row(task)) == list(task.__dataclass_fields__)
    assert render.record_row(task)["metadata"] == {"user": 42}


def ids_of(data: bytes, path: str = "ids.txt") -> tuple[list[str], IDLines]:
    lines = IDLines(io.BufferedReader(io.BytesIO(data)), path)  # type: ignore[arg-type]
    return list(lines), lines


def test_ids_are_read_line_by_line_skipping_blanks_and_comments() -> None:
    """Whitespace around an ID, CRLF endings, blank lines, comments of any length and a last
    line without a newline are all read as users write them."""
    long_comment = b"# " + b"x" * (3 * BLOCK) + b"\n"
    ids, lines = ids_of(b"a\r\n\n  b  \n" + long_comment + b"#c\nd")
    assert ids == ["a", "b", "d"]
    assert lines.where == "line 6 of ids.txt"


def test_an_over_long_line_is_refused_once_the_limit_is_read() -> None:
    """A line over the limit is refused with its number, however long the rest of it is."""

    class Endless(io.RawIOBase):
        """A stream of "a" without end, after one good line (like /dev/zero)."""

        def __init__(self) -> None:
            self.given = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            first = b"ok\n" if self.given == 0 else b""
            buffer[: len(first)] = first
            buffer[len(first) :] = b"a" * (len(buffer) - len(first))
            self.given += len(buffer)
            return len(buffer)

    endless = Endless()
    lines = IDLines(io.BufferedReader(endless), "-")  # type: ignore[arg-type]
    with pytest.raises(InvalidTaskIDError, match="longer than 256 characters"):
        list(lines)
    assert lines.where == "line 2 of standard input"
    assert endless.given < 1024 * 1024
    for padded in (b" " * LINE_LIMIT + b"x\n", b" " * (BLOCK + 10) + b"x\n"):
        with pytest.raises(UsageError, match=r"more than 1,024 bytes on a line \(line 1 of"):
            ids_of(padded)  # not skipped as blank, in one block or across two


def test_a_line_that_is_not_utf8_says_where() -> None:
    with pytest.raises(UsageError, match=r"not UTF-8 text \(line 2 of ids.txt\)"):
        ids_of(b"a\n\xff\n")


def test_every_character_is_judged_by_the_rule() -> None:
    """An ID of one character repeated is valid exactly when the character is printable ASCII
    and not one of / ? # % \\ (the fast check and the explanations agree)."""

    def accepted(task_id: str) -> bool:
        try:
            return check_task_id(task_id) == task_id
        except InvalidTaskIDError:
            return False

    judged = {chr(code): accepted(chr(code) * 3) for code in range(0x180)}
    rule = {char: "!" <= char <= "~" and char not in "/?#%\\" for char in judged}
    assert judged == rule


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([1], "a JSON object is needed, not list"),
        ("text", "a JSON object is needed, not str"),
        ({"at": datetime(2026, 1, 1, tzinfo=UTC)}, "not JSON"),
        ({"x": float("nan")}, "not JSON"),
        ({"x": "é" * (MAX_BYTES // 2)}, "more than 16,384"),
    ],
)
def test_metadata_is_a_json_object_of_at_most_16_kib(value: object, reason: str) -> None:
    """Anything else is refused, saying why; the size counts UTF-8 bytes of compact JSON."""
    with pytest.raises(UsageError, match=reason):
        check_metadata(value)


def test_metadata_parses_from_text() -> None:
    assert parse_metadata('{"user": 42}') == {"user": 42}
    assert check_metadata({"x": "y" * (MAX_BYTES - 8)}) is not None
    with pytest.raises(UsageError, match="not JSON"):
        parse_metadata("{user: 42}")
