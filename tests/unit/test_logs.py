"""Log lines: JSON objects and no secrets, wherever in a record a secret was put."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from typing import Any

import pytest

from tracker.cli.logs import handler

SECRET = "sk-live-0123456789abcdef"


class Leaky:
    """An object whose text quotes the secret, as an exception or a request object might."""

    def __str__(self) -> str:
        return f"<request Authorization: Bearer {SECRET}>"


def exc_info_quoting_the_secret() -> Any:
    try:
        raise RuntimeError(f"connect failed with Authorization: Bearer {SECRET}")
    except RuntimeError:
        return sys.exc_info()


# Every place a record carries text a formatter may write, each with the secret in it.
PLACES: dict[str, dict[str, Any]] = {
    "message": {"msg": f"token {SECRET} refused"},
    "args": {"msg": "token %s refused", "args": (SECRET,)},
    "mapping args": {"msg": "token %(token)s refused", "args": {"token": SECRET}},
    "an object as message": {"msg": Leaky()},
    "a poll's field": {"msg": "poll failed", "error": f"HTTP 401: Bearer {SECRET}"},
    "a poll's field holding JSON": {
        "msg": "poll failed",
        "error": {"message": [f"bad key {SECRET}", {"nested": SECRET}]},
        "status": (SECRET,),
    },
    "a poll's field holding an object": {"msg": "poll failed", "task_id": Leaky()},
    "exception": {"msg": "polling failed", "exc_info": exc_info_quoting_the_secret()},
    "exception text": {"msg": "polling failed", "exc_text": f"Traceback: {SECRET}"},
    "stack": {"msg": "where", "stack_info": f'  File "x.py", line 1\n    token = "{SECRET}"'},
}


def written(log_format: str, fields: dict[str, Any]) -> str:
    stream = io.StringIO()
    log_handler = handler(log_format, [SECRET], stream)
    record = logging.makeLogRecord({"name": "tracker.test", "levelno": 30, **fields})
    record.levelname = "WARNING"
    if log_handler.filter(record):
        log_handler.emit(record)
    return stream.getvalue()


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_secret_never_reaches_either_format(log_format: str, place: str) -> None:
    """A token placed in any part of a log record (its message, its arguments, a poll's
    fields, however nested, its exception or its stack) is written as [redacted], in text
    lines and in JSON lines."""
    output = written(log_format, PLACES[place])
    assert output.strip()
    assert SECRET not in output
    assert "[redacted]" in output or (log_format == "text" and "field" in place)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_record_that_cannot_be_formatted_is_reported_without_the_secret(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Arguments that do not fit the message make logging report the record on stderr, its
    message and arguments quoted: cleaned before that too."""
    assert written(log_format, {"msg": "no placeholder", "args": (SECRET,)}) == ""
    reported = capsys.readouterr().err
    assert "no placeholder" in reported and "[redacted]" in reported
    assert SECRET not in reported


def test_json_lines_carry_the_cleaned_fields_exception_and_stack() -> None:
    """The JSON line keeps each field where it was, cleaned: the message formatted, a poll's
    JSON field still JSON, the traceback and the stack as text."""
    record = {
        "msg": "token %s refused",
        "args": (SECRET,),
        "task_id": "video_1",
        "http_status": 401,
        "error": {"message": f"bad key {SECRET}", "code": 401},
        "exc_info": exc_info_quoting_the_secret(),
        "stack_info": f"stack with {SECRET}",
    }
    document = json.loads(written("json", record))
    assert document["message"] == "token [redacted] refused"
    assert (document["task_id"], document["http_status"]) == ("video_1", 401)
    assert document["error"] == {"message": "bad key [redacted]", "code": 401}
    assert "Bearer [redacted]" in document["exception"]
    assert document["stack"] == "stack with [redacted]"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", document["time"])


def test_a_logger_call_with_a_secret_everywhere_is_clean() -> None:
    """Through a real logger call (arguments, extra fields, a logged exception): nothing of
    the secret in the output."""
    stream = io.StringIO()
    logger = logging.getLogger("tracker.test_logs")
    logger.addHandler(handler("json", [SECRET], stream))
    logger.propagate = False
    try:
        try:
            raise RuntimeError(f"Bearer {SECRET}")
        except RuntimeError:
            logger.exception("token %s", SECRET, extra={"error": {"echo": SECRET}})
    finally:
        logger.handlers.clear()
        logger.propagate = True
    assert SECRET not in stream.getvalue()
    assert json.loads(stream.getvalue())["error"] == {"echo": "[redacted]"}
