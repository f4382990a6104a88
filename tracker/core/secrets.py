"""Secrets in memory: values that must never be printed, and the key a webhook secret names."""

from __future__ import annotations

import base64
import binascii

# What a secret is replaced with wherever text that came from elsewhere might quote it.
REDACTED = "[redacted]"
# A secret this short would also match ordinary text: "t" would blank every t.
MIN_REDACTED_LENGTH = 8


class Secret:
    """A value that must never be printed: its repr and str are masked."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def secret_key(secret: str) -> bytes:
    """The HMAC key a Standard Webhooks secret stands for: ``whsec_<base64>`` is the base64 of
    the key; any other secret is used as UTF-8 bytes."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except binascii.Error:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from None
    return secret.encode()
