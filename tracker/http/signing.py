"""Standard Webhooks: signing the events tracker sends, verifying the ones the API sends.

Signatures follow the Standard Webhooks scheme (docs/follow-ups.md): headers ``webhook-id``,
``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">``, several separated by spaces). A secret written ``whsec_<base64>``
is the base64 of the key (``tracker.core.secrets.secret_key``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

TOLERANCE_SECONDS = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def signature(key: bytes, event_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{event_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(key: bytes, event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed event."""
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, event_id, timestamp, body),
    }


class InvalidSignature(Exception):
    """An event whose signature, timestamp or headers do not check out."""


def verify(key: bytes, headers: dict[str, str], body: bytes, now: float) -> None:
    """Raise InvalidSignature unless the headers (lower-case names) sign ``body`` with ``key``
    within TOLERANCE_SECONDS of ``now``."""
    event_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not event_id or not _TIMESTAMP.fullmatch(timestamp) or not signatures:
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise InvalidSignature("the timestamp is more than five minutes away")
    expected = signature(key, event_id, int(timestamp), body).encode()
    given = [candidate.encode("latin-1", "replace") for candidate in signatures.split()]
    if not any(hmac.compare_digest(expected, candidate) for candidate in given):
        raise InvalidSignature("no signature matches")
