"""Reading a ``text/event-stream`` a line at a time, as a browser's ``EventSource`` does (the
HTML standard's "event stream interpretation"): no I/O, the same for both clients."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """An event as dispatched: its ``event:`` (``message`` if none), its ``data:`` lines joined,
    and the stream's last event ID once it came (an event without an ``id:`` keeps the one
    before it)."""

    event: str
    data: str
    last_id: str | None


@dataclass(frozen=True)
class Comment:
    """A line starting with ``:``, without it and one space after it (``ping``)."""

    text: str


class Decoder:
    """Lines in (without their line ends), messages and comments out. ``last_id`` and
    ``retry_ms`` outlive a connection; a half-received event does not (``restart``)."""

    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id
        self.retry_ms: int | None = None
        self._id = last_id
        self._event = ""
        self._data: list[str] = []
        self._first = True

    def restart(self) -> None:
        """A new connection: what the last one left unfinished is dropped."""
        self._id = self.last_id
        self._event = ""
        self._data = []
        self._first = True

    def line(self, line: str) -> Message | Comment | None:
        if self._first:
            self._first = False
            line = line.removeprefix("\ufeff")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return Comment(line[1:].removeprefix(" "))
        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> Message | None:
        self.last_id = self._id
        event, data = self._event or "message", self._data
        self._event, self._data = "", []
        if not data:
            return None
        return Message(event, "\n".join(data), self.last_id)
