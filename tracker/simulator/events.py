"""The API's own webhooks, as the simulator sends them to a receiver."""

from __future__ import annotations

import json
import secrets
import time

from tracker.core.secrets import secret_key
from tracker.http.signing import signed_headers


def send_webhook(
    url: str,
    secret: str,
    kind: str,
    video_id: str,
    *,
    timestamp: int | None = None,
    event_id: str | None = None,
) -> int:
    """POST the API's own event (``video.completed``, ``video.failed``) to a receiver, signed
    the Standard Webhooks way with ``secret``; return the HTTP status it answered."""
    import httpx

    stamp = int(time.time()) if timestamp is None else timestamp
    event_id = event_id or f"evt_{secrets.token_hex(12)}"
    body = json.dumps(
        {
            "object": "event",
            "id": event_id,
            "type": kind,
            "created_at": stamp,
            "data": {"id": video_id},
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        **signed_headers(secret_key(secret), event_id, stamp, body),
    }
    return httpx.post(url, content=body, headers=headers, timeout=10).status_code
