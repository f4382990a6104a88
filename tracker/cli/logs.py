"""Log lines: text for people, one JSON object per line for log pipelines; never a secret."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, TextIO

from tracker.core.encoding import timestamp_text
from tracker.core.secrets import MIN_REDACTED_LENGTH, REDACTED

# The fields a poll's log record carries (``extra=``), written as JSON keys when present.
POLL_FIELDS = ("task_id", "status", "http_status", "latency_ms", "finish_reason", "error")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", …}`` with a poll's fields when it has them, and
    the exception and the stack when the record carries them."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": timestamp_text(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in POLL_FIELDS:
            if hasattr(record, name):
                document[name] = getattr(record, name)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, ensure_ascii=False, default=str)


class Redact(logging.Filter):
    """Replaces secrets in everything of a record either format writes (its message and
    arguments, a poll's fields, the exception and the stack), whatever logged it (a library
    echoing a header…)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        # Too short a secret would also match ordinary text (the client does the same).
        self._secrets = [secret for secret in secrets if len(secret) >= MIN_REDACTED_LENGTH]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:
            # Arguments that do not fit the message: the handler reports the record as it is,
            # so its parts are cleaned one by one.
            record.msg, record.args = self._clean(record.msg), self._clean(record.args)
        else:
            # The message is kept formatted: arguments are never written on their own.
            record.msg, record.args = self._redact(message), None
        for name in POLL_FIELDS:
            if hasattr(record, name):
                setattr(record, name, self._clean(getattr(record, name)))
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text: a traceback quoting a secret is cleaned here once.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True

    def _clean(self, value: Any) -> Any:
        """``value`` with every secret replaced, in the strings inside dicts, lists and tuples
        too; any other object by the text a formatter would write for it."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dict):
            return {self._clean(key): self._clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._clean(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self._clean(item) for item in value)
        text = value if isinstance(value, str) else str(value)
        cleaned = self._redact(text)
        return value if cleaned == text else cleaned

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text


def handler(log_format: str, secrets: list[str], stream: TextIO | None = None) -> logging.Handler:
    """The handler every log line goes through: text or JSON, secrets removed."""
    made = logging.StreamHandler(stream)
    if log_format == "json":
        made.setFormatter(JsonFormatter())
    else:
        made.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    made.addFilter(Redact(secrets))
    return made


def writing_json() -> bool:
    """Whether the log lines are JSON (``--log-format json``)."""
    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)


def configure(level: int, libraries_level: int, log_format: str, secrets: list[str]) -> None:
    logging.basicConfig(level=level, handlers=[handler(log_format, secrets)], force=True)
    # httpx logs every request at INFO; APScheduler and Alembic their routine at INFO.
    for name in ("httpx", "httpcore", "apscheduler", "alembic"):
        logging.getLogger(name).setLevel(libraries_level)
