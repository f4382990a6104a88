"""Log lines: text for people, one JSON object per line for log pipelines; never a secret."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# The fields a poll's log record carries (``extra=``), written as JSON keys when present.
POLL_FIELDS = ("task_id", "status", "http_status", "latency_ms", "finish_reason", "error")


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message", …}`` with a poll's fields when it has them."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
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
        return json.dumps(document, ensure_ascii=False, default=str)


class Redact(logging.Filter):
    """Replaces secrets in every record, whatever logged it (a library echoing a header…)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        # Too short a secret would also match ordinary text (the client does the same).
        self._secrets = [secret for secret in secrets if len(secret) >= 8]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self._secrets):
            record.msg, record.args = self._redact(message), None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text: a traceback quoting a secret is cleaned here too.
            record.exc_text = self._redact(logging.Formatter().formatException(record.exc_info))
        return True

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


def writing_json() -> bool:
    """Whether the log lines are JSON (``--log-format json``)."""
    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)


def configure(level: int, libraries_level: int, log_format: str, secrets: list[str]) -> None:
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(Redact(secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # httpx logs every request at INFO; APScheduler and Alembic their routine at INFO.
    for name in ("httpx", "httpcore", "apscheduler", "alembic"):
        logging.getLogger(name).setLevel(libraries_level)
