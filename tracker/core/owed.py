"""What a task owes when it finishes: its files if it completed, and one event per
notification channel, built here and written by the transaction that finishes it, whichever
path finishes it: a poll (completed, failed, not found, timed out), the give-up sweep, or a
removal (one task or many) from the command line, the Python API, the HTTP API or the
dashboard; a task reopened owes its events again when it finishes again (docs/follow-ups.md)."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from tracker.core.encoding import jsonable
from tracker.core.follow_ups import FollowUps, NewDownload, NewEvent
from tracker.core.models import ClaimedTask, FinishReason, PollRecord, Task
from tracker.core.video import ASSETS_LAST


def finish_event(
    *,
    task_id: str,
    label: str | None,
    metadata: Any,
    status: str | None,
    finish_reason: FinishReason | None,
    finished_at: datetime | None,
    progress: int | None,
    error: Any,
    video: Any,
) -> dict[str, Any]:
    """The event of a finished task, with what a receiver needs to act without looking the
    task up; ``download_path`` is added when it is delivered."""
    return {
        "type": "task.finished",
        "task_id": task_id,
        "label": label,
        "metadata": metadata,
        "status": status,
        "finish_reason": finish_reason.value if finish_reason is not None else None,
        "finished_at": jsonable(finished_at),
        "progress": progress,
        "error": error,
        "video": video,
    }


def new_events(channels: tuple[str, ...], payload: dict[str, Any]) -> tuple[NewEvent, ...]:
    return tuple(NewEvent(channel, f"evt_{secrets.token_hex(12)}", payload) for channel in channels)


def owed_by_poll(
    follow_ups: FollowUps, task: ClaimedTask, record: PollRecord
) -> tuple[tuple[NewDownload, ...], tuple[NewEvent, ...]]:
    """What a task a poll finished owes. One finished without a video object (three 404s,
    give-up-after) is described by what it showed last."""
    video = record.fetch.video
    downloads: tuple[NewDownload, ...] = ()
    if record.finish_reason is FinishReason.COMPLETED:
        expires_at = (video and video.expires_at) or record.polled_at + ASSETS_LAST
        downloads = tuple(NewDownload(v, expires_at) for v in follow_ups.variants)
    payload = finish_event(
        task_id=record.task_id,
        label=task.label,
        metadata=task.metadata,
        status=video.status if video else task.status,
        finish_reason=record.finish_reason,
        finished_at=record.polled_at,
        progress=video.progress if video else task.progress,
        error=record.snapshot_error,
        video=_document(record.fetch.body) if video else None,
    )
    return downloads, new_events(follow_ups.channels, payload)


def owed_without_poll(channels: tuple[str, ...], task: Task) -> tuple[NewEvent, ...]:
    """The events of a task finished without a poll (timed out by the sweep, removed), as its
    finished row reads."""
    payload = finish_event(
        task_id=task.task_id,
        label=task.label,
        metadata=task.metadata,
        status=task.status,
        finish_reason=FinishReason(task.finish_reason) if task.finish_reason else None,
        finished_at=task.finished_at,
        progress=task.progress,
        error=None,
        video=None,
    )
    return new_events(channels, payload)


def _document(body: str | None) -> Any:
    try:
        return json.loads(body) if body is not None else None
    except ValueError:
        return None
