"""What a simulated video answers, GET after GET: the scripted replies, and the lifecycles made
of them (queued, rising progress, then completed, failed or gone), in OpenAI's words or a
relay's."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from tracker.simulator.http import error_body

Style = Literal["openai", "relay", "envelope"]
Outcome = Literal["completed", "failed", "vanished"]

STATUS_WORDS: dict[Style, dict[str, str]] = {
    "openai": {
        "queued": "queued",
        "running": "in_progress",
        "completed": "completed",
        "failed": "failed",
    },
    "relay": {
        "queued": "SUBMITTED",
        "running": "IN_PROGRESS",
        "completed": "SUCCESS",
        "failed": "FAILURE",
    },
}
STATUS_WORDS["envelope"] = STATUS_WORDS["relay"]
# How long a completed video's files stay downloadable.
ASSETS_KEPT = 3600
# The videos `tracker simulator` starts with, one of each kind: what each does, and how.
TOUR: dict[str, tuple[str, dict[str, Any]]] = {
    "video_completes": ("completes", {"steps": 6}),
    "video_fails": ("fails", {"steps": 3, "outcome": "failed"}),
    "video_vanishes": (
        "vanishes: 404 from its fourth poll on",
        {"steps": 2, "outcome": "vanished"},
    ),
    "sora-2:task_relay_completes": (
        "answers as a relay does, and completes",
        {"steps": 4, "style": "relay"},
    ),
    "sora-2:task_envelope_fails": (
        "answers in a relay's envelope, and fails",
        {"steps": 3, "style": "envelope", "outcome": "failed"},
    ),
}


@dataclass(frozen=True)
class Reply:
    """One scripted answer to a GET of a video.

    ``video`` fields are merged over the video's base object; ``raw`` replaces the whole body.
    ``delay`` holds the answer back; ``drop`` closes the connection without answering.
    """

    status: int = 200
    video: dict[str, Any] = field(default_factory=dict)
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


def lifecycle(
    video_id: str, outcome: Outcome, queued: int, steps: int, style: Style
) -> list[Reply]:
    """Queued for ``queued`` GETs, in progress for ``steps`` with rising progress, then
    ``outcome`` for good: completed (its times are stamped when it is first served, see
    ``completion``), failed at the progress it reached, or vanished (404, as for an ID the API
    never made)."""
    words = STATUS_WORDS[style]
    script = [Reply(video={"status": words["queued"], "progress": 0})] * queued
    progress: int | str = 0
    for step in range(1, steps + 1):
        percent = round(100 * step / (steps + 1))
        progress = percent if style == "openai" else f"{percent}%"
        script.append(Reply(video={"status": words["running"], "progress": progress}))
    if outcome == "completed":
        script.append(Reply(video={"status": words["completed"], "progress": 100}))
    elif outcome == "failed":
        error = {"code": "moderation_blocked", "message": "The prompt was blocked."}
        script.append(
            Reply(video={"status": words["failed"], "progress": progress, "error": error})
        )
    else:
        script.append(Reply(status=404, raw=not_found(video_id)))
    return script


def completion(reply: Reply, style: Style) -> Reply:
    """``reply``, the first completed answer of a lifecycle, with the time it completed (now)
    and the time its files expire."""
    now = time.time()
    stamps = {
        "completed_at": timestamp(now, style),
        "expires_at": timestamp(now + ASSETS_KEPT, style),
    }
    return replace(reply, video={**reply.video, **stamps})


def not_found(video_id: str) -> bytes:
    return error_body(
        f"Video with id '{video_id}' not found.", "invalid_request_error", "video_not_found"
    )


def chosen_by(prompt: str) -> tuple[Outcome, Style]:
    """What ``POST /v1/videos`` makes of its prompt: a prompt naming ``fail`` fails, ``vanish``
    vanishes, any other completes; ``relay`` or ``envelope`` answers in that relay's shape
    (docs/simulator.md)."""
    words = prompt.casefold()
    outcome: Outcome = (
        "failed" if "fail" in words else "vanished" if "vanish" in words else "completed"
    )
    style: Style = "envelope" if "envelope" in words else "relay" if "relay" in words else "openai"
    return outcome, style


def timestamp(seconds: float, style: Style) -> int:
    """OpenAI's times are in seconds, relays' in milliseconds."""
    return int(seconds) if style == "openai" else int(seconds * 1000)
