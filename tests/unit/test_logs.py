"""Log lines: JSON objects and no secrets."""

from __future__ import annotations

import io
import json
import logging

from tracker.cli.logs import JsonFormatter, Redact

SECRET = "sk-live-0123456789abcdef"


def test_a_secret_is_redacted_from_messages_and_tracebacks() -> None:
    """A secret in a message or in the text of a logged exception never reaches the output;
    the JSON line carries the cleaned traceback."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(Redact([SECRET]))
    logger = logging.getLogger("tracker.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("token %s refused", SECRET)
        try:
            raise RuntimeError(f"connect failed with Authorization: Bearer {SECRET}")
        except RuntimeError:
            logger.exception("polling failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert SECRET not in output
    first, second = (json.loads(line) for line in output.splitlines())
    assert first["message"] == "token [redacted] refused"
    assert "Bearer [redacted]" in second["exception"]
