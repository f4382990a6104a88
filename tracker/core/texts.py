"""Short texts for people, the same in the terminal and in the browser: an age for a column
(``4h05m``), a duration in words (``3 min 10 s``), a report's duration (``45.3s``, ``2m26s``),
a task ID cut in the middle, a poll's error in one line."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def age(delta: timedelta) -> str:
    """2d3h, 4h05m, 12m30s, 45s: short enough for a column."""
    seconds = max(0, int(delta.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


def took(seconds: float | None) -> str:
    """A duration of the report in a cell: ``45.3s`` under a minute, then as ``age`` gives it
    (``2m26s``, ``1h05m``); ``—`` for none."""
    if seconds is None:
        return "—"
    if abs(seconds) < 60:
        return f"{seconds:.1f}s"
    return age(timedelta(seconds=seconds))


def duration(delta: timedelta) -> str:
    """42 s, 3 min 10 s, 2 h 5 min, 1 d 3 h: the two largest units, for sentences; under a
    second reads ``0 s``."""
    left = max(0, int(delta.total_seconds()))
    parts: list[str] = []
    for unit, size in _UNITS:
        count, left = divmod(left, size)
        if count or (parts and len(parts) < 2):
            parts.append(f"{count} {unit}")
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].startswith("0 "):
        parts.pop()
    return " ".join(parts) or "0 s"


def shorten_middle(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters. The IDs of one API share their
    beginning (``video_``, ``sora-2:task_`` and a ULID's timestamp) and differ at the end, so a
    third is kept of the beginning, which says what kind of ID it is, and the rest of the end."""
    if len(text) <= width:
        return text
    head = (width - 1) // 3
    tail = width - 1 - head
    return f"{text[:head]}…{text[len(text) - tail :]}"


def error_line(error: Any, http_status: int | None) -> str:
    """One line for what a poll's error object says: its message (or ``request failed``),
    after the HTTP status when there was one. A message that is not text is written as the
    JSON it came as (``true``, ``{"code":5}``), as the dashboard's script writes it."""
    message = error.get("message") if isinstance(error, dict) else error
    if message is None or message == "":
        text = "request failed"
    elif isinstance(message, str):
        text = message
    else:
        text = json.dumps(message, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"HTTP {http_status}: {text}" if http_status is not None else text
