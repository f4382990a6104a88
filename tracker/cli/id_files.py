"""Reading task IDs from a file or standard input, one per line, in bounded memory."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from tracker.core.ids import MAX_LENGTH, too_long
from tracker.errors import UsageError

# The longest line read: an ID of the longest kind with room for the spaces around it. A
# longer line is refused as soon as this much of it is read (a comment is skipped instead),
# so a file without newlines (/dev/zero) costs no more memory than a short one.
LINE_LIMIT = 1024
BLOCK = 64 * 1024


class IDLines:
    """The lines of a file that hold an ID, stripped, read as they are used: blank lines and
    lines starting with # are skipped. The IDs are not checked here; ``where`` names the line
    of the last one given, for the error of an invalid one."""

    def __init__(self, stream: BinaryIO, path: str) -> None:
        self._stream = stream
        self._path = path
        self.number = 0  # the line number of the ID last given (0: none yet)

    @property
    def where(self) -> str:
        source = "standard input" if self._path == "-" else self._path
        return f"line {self.number:,} of {source}"

    def __iter__(self) -> Iterator[str]:
        partial = b""
        skipping = False  # the rest of an over-long comment
        while block := self._read():
            if skipping:
                newline = block.find(b"\n")
                if newline == -1:
                    continue
                skipping, block = False, block[newline + 1 :]
            lines = (partial + block).split(b"\n")
            partial = lines.pop()
            for line in lines:
                if (task_id := self._id_on(line)) is not None:
                    yield task_id
            if len(partial) > LINE_LIMIT:
                self._id_on(partial)  # a comment (skipped to its end), or refused
                skipping, partial = True, b""
        if partial and (task_id := self._id_on(partial)) is not None:
            yield task_id

    def _id_on(self, line: bytes) -> str | None:
        """The ID on the next line, or None for a blank line or a comment. A line over the
        limit is judged by its first LINE_LIMIT + 1 bytes, wherever the blocks read end."""
        self.number += 1
        if len(line) > LINE_LIMIT:
            start = line[: LINE_LIMIT + 1].strip()
            if start.startswith(b"#"):
                return None
            if len(start) > MAX_LENGTH:
                raise too_long(start[:40].decode("ascii", errors="replace"))
            where = f" ({self.where})"
            raise UsageError(
                f"--file {self._path!r}: more than {LINE_LIMIT:,} bytes on a line{where}"
            )
        text = line.strip()
        if not text or text.startswith(b"#"):
            return None
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError:
            raise self._unreadable("not UTF-8 text") from None

    def _read(self) -> bytes:
        try:
            return self._stream.read(BLOCK)
        except OSError as exc:
            raise self._unreadable(exc.strerror or str(exc)) from None

    def _unreadable(self, reason: str) -> UsageError:
        where = f" ({self.where})" if self.number else ""
        return UsageError(f"--file {self._path!r}: cannot read: {reason}{where}")


@contextmanager
def id_lines(path: str) -> Iterator[IDLines]:
    """The lines of the file at ``path`` ('-': standard input)."""
    try:
        stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"--file {path!r}: cannot read: {exc.strerror or exc}") from None
    try:
        yield IDLines(stream, path)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
