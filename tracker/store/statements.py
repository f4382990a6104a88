"""SQL text cut into its statements the way the database's own tokenizer would: a semicolon
inside a string, a quoted name or a comment ends nothing (``tracker sql``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# PostgreSQL's dollar quotes: $$…$$ or $tag$…$tag$ (a tag never starts with a digit: $1 is a
# parameter).
_DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


@dataclass(frozen=True)
class Statement:
    text: str  # without its closing semicolon
    keyword: str  # its first word in lower case, after comments and opening parentheses


def statements(sql: str, dialect: str) -> list[Statement]:
    """The statements of ``sql`` in the dialect's syntax (``sqlite`` or ``postgresql``); what
    holds only blanks and comments is no statement. Unterminated quotes and comments run to the
    end, where the database reports them."""
    postgresql = dialect == "postgresql"
    found: list[Statement] = []
    start = position = 0
    seen = False  # whether the statement shows anything besides blanks and comments yet
    keyword: str | None = None
    while position < len(sql):
        char = sql[position]
        if char == ";":
            if seen:
                found.append(Statement(sql[start:position].strip(), keyword or ""))
            start, position, seen, keyword = position + 1, position + 1, False, None
            continue
        if char.isspace():
            position += 1
            continue
        if sql.startswith("--", position):
            newline = sql.find("\n", position)
            position = len(sql) if newline < 0 else newline + 1
            continue
        if sql.startswith("/*", position):
            position = _comment_end(sql, position, nested=postgresql)
            continue
        seen = True
        word = _WORD.match(sql, position)
        if word is not None:
            if keyword is None:
                keyword = word.group().lower()
            position = word.end()
            if postgresql and word.group() in ("E", "e") and sql.startswith("'", position):
                position = _quoted_end(sql, position, "'", backslashes=True)
            continue
        if keyword is None and char != "(":
            keyword = ""  # it starts with something other than a word
        position = _token_end(sql, position, postgresql)
    if seen:
        found.append(Statement(sql[start:].strip(), keyword or ""))
    return found


def _token_end(sql: str, position: int, postgresql: bool) -> int:
    """Where the quoted text (or the single character) at ``position`` ends."""
    char = sql[position]
    if char in "'\"":
        return _quoted_end(sql, position, char)
    if not postgresql and char == "`":
        return _quoted_end(sql, position, "`")
    if not postgresql and char == "[":
        closing = sql.find("]", position + 1)
        return len(sql) if closing < 0 else closing + 1
    if postgresql and char == "$":
        quote = _DOLLAR_QUOTE.match(sql, position)
        if quote is not None:
            closing = sql.find(quote.group(), quote.end())
            return len(sql) if closing < 0 else closing + len(quote.group())
    return position + 1


def _quoted_end(sql: str, position: int, quote: str, *, backslashes: bool = False) -> int:
    """The end of text quoted from ``position``, where a doubled quote stands for itself (and,
    in PostgreSQL's E'…' strings, a backslash escapes the next character)."""
    position += 1
    while position < len(sql):
        char = sql[position]
        if backslashes and char == "\\":
            position += 2
        elif char != quote:
            position += 1
        elif sql.startswith(quote, position + 1):
            position += 2
        else:
            return position + 1
    return len(sql)


def _comment_end(sql: str, position: int, *, nested: bool) -> int:
    """The end of the /* comment at ``position``; PostgreSQL's nest, SQLite's do not."""
    depth = 0
    while position < len(sql):
        if sql.startswith("/*", position) and (nested or depth == 0):
            depth += 1
            position += 2
        elif sql.startswith("*/", position):
            depth -= 1
            position += 2
            if depth == 0:
                return position
        else:
            position += 1
    return len(sql)
