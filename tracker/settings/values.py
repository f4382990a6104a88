"""Parsing the text of one setting (from a flag, a variable or a keyword) into its value.

Each parser raises ValueError with a reason; the caller names where the text came from.
"""

from __future__ import annotations

import importlib.util
import math
import re
import shlex
import tempfile
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tracker.core.follow_ups import VARIANTS
from tracker.core.report import ReportQuery
from tracker.core.secrets import Secret, secret_key
from tracker.errors import ReportQueryError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.IGNORECASE)
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
DAY = 86400.0
# Ten years: any longer is a typo, and would overflow date arithmetic.
LONGEST = 3650 * DAY
MIN_SECRET_BYTES = 16


def parse_duration(raw: str, *, most: float = LONGEST) -> float:
    """Seconds in ``raw``: a number with an optional unit s, m, h or d (``15``, ``1.5``,
    ``90s``, ``15m``, ``24h``, ``7d``), more than zero and at most ``most``."""
    match = _DURATION.fullmatch(raw.strip())
    if match is None:
        raise ValueError("not a duration (use e.g. 15, 90s, 15m, 24h, 7d)")
    seconds = float(match[1]) * _DURATION_UNITS[match[2].lower()]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("must be more than zero")
    if seconds > most:
        raise ValueError(f"must be at most {_spoken(most)}")
    return seconds


def parse_moment(raw: str, now: datetime) -> datetime:
    """A moment: an age before ``now`` (``7d``, ``36h``, as ``parse_duration`` reads it) or an
    ISO 8601 date or date and time (``2026-11-01``, ``2026-11-01T12:00+02:00``; UTC when it
    names no zone), as an aware UTC datetime."""
    text = raw.strip()
    if text.replace(".", "", 1).isdigit():
        # Read as seconds, `2026` would quietly mean the last half hour.
        raise ValueError("an age needs a unit (7d, 12h); a date is 2026-11-01")
    if _DURATION.fullmatch(text):
        return now - timedelta(seconds=parse_duration(text))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not a date (2026-11-01) or an age (7d)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def report_query(
    now: datetime,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    by: str | Sequence[str] | None = None,
) -> ReportQuery:
    """The report's query from the command's flags, the API's parameters or the Python API's
    arguments (moments as text or datetimes, keys as ``model,size`` or a list):
    ReportQueryError naming the field for a value that cannot be used."""

    def moment(value: str | datetime | None, field: Literal["since", "until"]) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        try:
            return parse_moment(value, now)
        except ValueError as exc:
            raise ReportQueryError(field, str(exc)) from None

    return ReportQuery.of(now, moment(since, "since"), moment(until, "until"), by)


def parse_short_duration(raw: str) -> float:
    """A duration of at most a day (intervals, timeouts)."""
    return parse_duration(raw, most=DAY)


def _spoken(seconds: float) -> str:
    return f"{seconds / DAY:g}d" if seconds >= DAY else f"{seconds:g}s"


def parse_count(raw: str, least: int, most: int) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ValueError("not a whole number") from None
    if not least <= value <= most:
        raise ValueError(f"must be between {least} and {most}")
    return value


def parse_concurrency(raw: str) -> int:
    return parse_count(raw, 1, 10_000)


def parse_port(raw: str) -> int:
    if not raw.strip().isdigit() or not 0 <= int(raw) <= 65535:
        raise ValueError("not a port number from 0 to 65535")
    return int(raw)


def _split_http_url(text: str) -> SplitResult:
    """``text`` split, if it is an http(s) URL with a host and a port that is a port."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 (parsing the port is the check)
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    return parts


def parse_api_base(raw: str) -> str:
    """An http(s) base URL without a trailing slash; a trailing ``/v1`` is dropped (we add it)."""
    parts = _split_http_url(raw.strip())
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    base = raw.strip().rstrip("/")
    return base.removesuffix("/v1")


# The name this package is installed by (`tracker` on PyPI is another project's).
DISTRIBUTION = "video-task-tracker"


def parse_database_url(raw: str) -> str:
    """A SQLAlchemy URL for SQLite or PostgreSQL; ``postgresql://`` and ``postgres://`` (what
    hosting panels hand out) mean psycopg 3."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ValueError("not a database URL (e.g. sqlite:///tracker.db)") from None
    # Read from the URL's text: asking SQLAlchemy for the driver would load a dialect, and
    # there is none called postgres.
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "psycopg"):
            raise ValueError("PostgreSQL is supported through psycopg 3: postgresql+psycopg://")
        if importlib.util.find_spec("psycopg") is None:
            raise ValueError(f"PostgreSQL needs its driver: pip install '{DISTRIBUTION}[postgres]'")
        url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ValueError("SQLite is supported through the standard library: sqlite:///PATH")
        path = url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ValueError("needs a file path: sqlite:///PATH (an in-memory database is lost)")
        parent = Path(path).expanduser().parent
        if not parent.is_dir():
            raise ValueError(f"directory {str(parent)!r} does not exist")
    else:
        raise ValueError("unsupported database: use sqlite:///PATH or postgresql://…")
    return url.render_as_string(hide_password=False)


def parse_download_dir(raw: str) -> str:
    """An absolute path to a writable directory, or to one that can be made in a writable one."""
    path = Path(raw).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ValueError("not a directory")
    probe = path if path.exists() else path.parent
    if not probe.is_dir():
        raise ValueError(f"cannot be created: {str(probe)!r} does not exist")
    try:  # a real file: permission bits say nothing to root or of a read-only mount
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        what = "the directory is not writable" if probe == path else f"cannot be created in {probe}"
        raise ValueError(f"{what}: {exc.strerror or exc}") from None
    return str(path)


def parse_variants(raw: str) -> tuple[str, ...]:
    variants = tuple(dict.fromkeys(v.strip().lower() for v in raw.split(",") if v.strip()))
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants:
        raise ValueError(f"variants are among {', '.join(VARIANTS)}")
    return variants


def parse_http_url(raw: str) -> str:
    text = raw.strip()
    if any(char.isspace() or not char.isprintable() for char in text):
        raise ValueError("contains spaces or control characters")
    _split_http_url(text)
    import httpx  # only the commands that send parse URLs like this: the others need not load it

    try:
        httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    return text


def parse_command(raw: str) -> tuple[str, ...]:
    try:
        words = tuple(shlex.split(raw))
    except ValueError as exc:
        raise ValueError(f"not a command line: {exc}") from None
    if not words:
        raise ValueError("the command is empty")
    return words


def choice(*allowed: str) -> Callable[[str], str]:
    """A parser of one word among ``allowed``, any case."""

    def parse(raw: str) -> str:
        word = raw.strip().lower()
        if word not in allowed:
            raise ValueError(f"must be {' or '.join(allowed)}")
        return word

    return parse


def parse_host(raw: str) -> str:
    host = raw.strip()
    if not host or any(char.isspace() for char in host):
        raise ValueError("not a host name or address")
    return host


def parse_flag(raw: str) -> bool:
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("1 or 0 (true or false)")


def checked_token(text: str) -> Secret:
    """An API token: it travels in an HTTP header, so printable ASCII without spaces."""
    token = text.strip()
    if not token:
        raise ValueError("the token is empty")
    if not all("!" <= char <= "~" for char in token):
        # Said without showing the token.
        raise ValueError("a token may only hold printable ASCII characters without spaces")
    return Secret(token)


def checked_webhook_secret(text: str) -> Secret:
    key = secret_key(text.strip())
    if len(key) < MIN_SECRET_BYTES:
        # An empty or tiny key signs anything an attacker likes.
        raise ValueError(f"the secret must be at least {MIN_SECRET_BYTES} bytes")
    return Secret(text.strip())


def parse_origins(raw: str) -> tuple[str, ...]:
    """Web origins (``https://app.example``, ``http://localhost:3000``): scheme, host and port."""
    origins = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        parts = _split_http_url(item)
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError(f"{item!r} is not an origin (scheme://host[:port], nothing more)")
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(dict.fromkeys(origins))


def parse_host_list(raw: str) -> str:
    """Comma-separated addresses (or ``*``), as uvicorn takes them."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    for item in items:
        if any(char.isspace() for char in item):
            raise ValueError(f"{item!r} is not an address")
    return ",".join(items)


MIN_SERVER_TOKEN_LENGTH = 16


def checked_server_tokens(text: str) -> tuple[Secret, ...]:
    """Server tokens, comma- or line-separated: each printable ASCII, at least 16 characters
    (a short one is guessed), said without showing any of them."""
    tokens = [token.strip() for token in text.replace("\n", ",").split(",") if token.strip()]
    if not tokens:
        raise ValueError("no token in it")
    for index, token in enumerate(tokens, start=1):
        if not all("!" <= char <= "~" for char in token):
            raise ValueError(f"token {index} may only hold printable ASCII without spaces")
        if len(token) < MIN_SERVER_TOKEN_LENGTH:
            raise ValueError(f"token {index} is shorter than {MIN_SERVER_TOKEN_LENGTH} characters")
    return tuple(Secret(token) for token in dict.fromkeys(tokens))
