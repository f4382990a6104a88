"""A task's metadata: the application's own JSON object, stored with the task and given back
wherever the task is (docs/cli.md, add)."""

from __future__ import annotations

import json
from typing import Any

from tracker.errors import UsageError

MAX_BYTES = 16 * 1024


def check_metadata(value: object) -> dict[str, Any]:
    """``value`` unchanged if it is a JSON object of at most MAX_BYTES (as compact UTF-8
    JSON), else UsageError saying why."""
    if not isinstance(value, dict):
        raise UsageError(f"invalid metadata: a JSON object is needed, not {type(value).__name__}")
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid metadata: not JSON ({exc})") from None
    size = len(text.encode())
    if size > MAX_BYTES:
        raise UsageError(f"invalid metadata: {size:,} bytes of JSON, more than {MAX_BYTES:,}")
    return value


def parse_metadata(text: str) -> dict[str, Any]:
    """The JSON object ``text`` holds, checked as check_metadata does."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"invalid metadata: not JSON ({exc})") from None
    return check_metadata(value)
