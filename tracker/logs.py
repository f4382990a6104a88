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
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
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
            for secret in self._secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        return True


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
