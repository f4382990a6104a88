"""The event feed's vocabulary: where an event stands in the feed, and what it tells.

A snapshot's place in the feed is its writing transaction's ID and then its own ID. PostgreSQL
hands out snapshot IDs before their transactions commit, so IDs become visible out of order; a
feed read only below the oldest transaction still running (the watermark) and in this order
never meets a row committing behind it. On SQLite, where one writer commits at a time, the
transaction is always 0 and the order is the IDs' (docs/http-api.md, Events).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

_BIGINT = 2**63 - 1
_POSITION = re.compile(r"(?:(\d{1,19})-)?(\d{1,19})")


class FeedPosition(NamedTuple):
    """A place in the feed; ordered as the feed is. Written ``<transaction>-<snapshot>``."""

    xid: int
    id: int

    def __str__(self) -> str:
        return f"{self.xid}-{self.id}"

    @classmethod
    def parse(cls, text: str) -> FeedPosition | None:
        """The position ``text`` names, or None if it names none. A bare number is a snapshot
        ID as earlier versions sent them, before transactions were recorded (transaction 0)."""
        match = _POSITION.fullmatch(text.strip())
        if match is None:
            return None
        xid, snapshot = int(match[1] or 0), int(match[2])
        if xid > _BIGINT or snapshot > _BIGINT:
            return None
        return cls(xid, snapshot)


START = FeedPosition(0, 0)


@dataclass(frozen=True)
class FeedItem:
    """A snapshot as the event stream tells it, with what its task is and how it ended."""

    xid: int
    id: int
    task_id: str
    polled_at: datetime
    http_status: int | None
    status: str | None
    progress: int | None
    error: Any
    finished: bool
    label: str | None
    metadata: Any
    finish_reason: str | None
    finished_at: datetime | None

    @property
    def position(self) -> FeedPosition:
        return FeedPosition(self.xid, self.id)


@dataclass(frozen=True)
class FeedRead:
    """One read of the feed: the items below the watermark, in order, and whether committed
    items beyond it wait for an older transaction to end (a reader looks again soon)."""

    items: list[FeedItem]
    held_back: bool
