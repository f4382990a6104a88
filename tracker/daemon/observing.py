"""What the poller tells about its work: the Observer it calls (the metrics implement it) and
each poll's log line."""

from __future__ import annotations

import logging
from typing import Protocol

from tracker.core.models import PollRecord

logger = logging.getLogger(__name__)


class Observer(Protocol):
    """Is told what the poller does (the metrics, ``tracker.daemon.metrics``); must not block."""

    def polled(self, record: PollRecord, lateness: float) -> None: ...

    def wrote(self, seconds: float) -> None: ...

    def ticked(self) -> None:
        """A tick wrote and claimed (or found the database down) and is done."""


class Unobserved:
    """No one to tell."""

    def polled(self, record: PollRecord, lateness: float) -> None:
        pass

    def wrote(self, seconds: float) -> None:
        pass

    def ticked(self) -> None:
        pass


def log_poll(record: PollRecord) -> None:
    """One poll's log line: INFO when it finished its task, WARNING when it failed, DEBUG
    otherwise; its fields go to JSON logs as they are."""
    fetch = record.fetch
    video = fetch.video
    fields = {
        "task_id": record.task_id,
        "status": video.status if video else None,
        "http_status": fetch.http_status,
        "latency_ms": fetch.latency_ms,
    }
    if record.finish_reason is not None:
        fields["finish_reason"] = record.finish_reason.value
        logger.info(
            "task %s finished: %s (status %s)",
            record.task_id,
            record.finish_reason.value,
            video.status if video else fetch.http_status,
            extra=fields,
        )
    elif fetch.error is not None:
        fields["error"] = record.last_error
        logger.warning("task %s: poll failed: %s", record.task_id, record.last_error, extra=fields)
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "task %s: %s %s%%",
            record.task_id,
            video and video.status,
            video and video.progress,
            extra=fields,
        )
