"""How HTTP failures read in one line, with the token never in them."""

from __future__ import annotations

import httpx

from tracker.core.secrets import MIN_REDACTED_LENGTH, REDACTED

_EXCERPT = 200


class Redactor:
    """Replaces a secret in text and bytes that came from elsewhere (a relay echoing the key)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret if len(secret) >= MIN_REDACTED_LENGTH else ""
        self._secret_bytes = self._secret.encode()

    def text(self, text: str) -> str:
        return text.replace(self._secret, REDACTED) if self._secret else text

    def content(self, content: bytes) -> bytes:
        if self._secret_bytes and self._secret_bytes in content:
            return content.replace(self._secret_bytes, REDACTED.encode())
        return content


def describe(exc: httpx.HTTPError) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def excerpt(content: bytes) -> str:
    # NUL replaced as in what is read from JSON: no database keeps it in text.
    text = content[:_EXCERPT].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return text + ("…" if len(content) > _EXCERPT else "")
