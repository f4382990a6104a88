"""Settings (SPEC §3): the only module that reads the environment.

Every setting has a command-line flag and a ``TRACKER_*`` variable; the flag wins. Values arrive
as strings from either source and are parsed here, so a bad value gets the same one-line message
whichever way it came in, naming where it came from.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from tracker.errors import ConfigError
from tracker.proxy import DIRECT, Proxies, parse_proxy_choice, resolve_proxies, shown

DEFAULT_DATABASE_URL = "sqlite:///tracker.db"
DEFAULT_API_BASE = "https://api.gpt.ge"
TOKEN_VARIABLE = "TRACKER_API_TOKEN"
TOKEN_FILE_VARIABLE = "TRACKER_API_TOKEN_FILE"

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_SECRET_BYTES = 16
# Ten years: any longer is a typo, and would overflow date arithmetic.
_LONGEST = 3650 * 86400.0


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


@dataclass(frozen=True)
class Settings:
    """Everything a tracker needs to know, already parsed and validated."""

    database_url: str = DEFAULT_DATABASE_URL
    api_base: str = DEFAULT_API_BASE
    token: Secret | None = field(default=None, repr=False)
    poll_interval: float = 15.0
    concurrency: int = 32
    request_timeout: float = 30.0
    give_up_after: float = 24 * 3600.0
    log_format: str = "text"
    proxy: Proxies = DIRECT
    # After a task finishes (issue #6)
    download_dir: str | None = None
    download_variants: tuple[str, ...] = ("video",)
    notify_url: str | None = None
    notify_secret: Secret | None = field(default=None, repr=False)
    on_finish: tuple[str, ...] | None = None
    on_finish_timeout: float = 60.0
    webhook_port: int | None = None
    webhook_host: str = "0.0.0.0"
    webhook_secret: Secret | None = field(default=None, repr=False)
    # Operating it (issue #7)
    metrics_port: int | None = None
    metrics_host: str = "0.0.0.0"
    retain: float | None = None
    record: str = "all"

    def require_token(self) -> Secret:
        if self.token is None:
            raise ConfigError(
                f"no API token: set {TOKEN_VARIABLE} or {TOKEN_FILE_VARIABLE} (or --token-file)"
            )
        return self.token


def parse_duration(raw: str) -> float:
    """Seconds in ``raw``: a number with an optional unit s, m, h or d (``90s``, ``7d``)."""
    match = _DURATION.fullmatch(raw.strip())
    if match is None:
        raise ValueError("not a duration (use e.g. 90s, 15m, 24h, 7d)")
    seconds = float(match[1]) * _DURATION_UNITS[match[2]]
    if seconds <= 0:
        raise ValueError("must be more than zero")
    if seconds > _LONGEST:
        raise ValueError("must be at most 3650d")
    return seconds


def parse_seconds(raw: str) -> float:
    """A number of seconds, more than zero and at most a day."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a number more than zero")
    if value > 86400:
        raise ValueError("must be at most 86400 (a day)")
    return value


def parse_concurrency(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError("not a whole number") from None
    if not 1 <= value <= 10_000:
        raise ValueError("must be between 1 and 10000")
    return value


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


def parse_database_url(raw: str) -> str:
    """A SQLAlchemy URL for SQLite or PostgreSQL; ``postgresql://`` means psycopg 3."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ValueError("not a database URL (e.g. sqlite:///tracker.db)") from None
    backend = url.get_backend_name()
    if backend in ("postgres", "postgresql"):
        if url.get_driver_name() not in ("psycopg", "postgresql", "postgres"):
            raise ValueError("PostgreSQL is supported through psycopg 3: postgresql+psycopg://")
        if importlib.util.find_spec("psycopg") is None:
            raise ValueError("PostgreSQL needs its driver: pip install 'tracker[postgres]'")
        url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        if url.get_driver_name() not in ("pysqlite", "sqlite"):
            raise ValueError("SQLite is supported through the standard library: sqlite:///PATH")
        path = url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            raise ValueError("needs a file path: sqlite:///PATH (an in-memory database is lost)")
        parent = Path(path).expanduser().parent
        if not parent.is_dir():
            raise ValueError(f"directory {str(parent)!r} does not exist")
    else:
        raise ValueError("unsupported database: use sqlite:///PATH or postgresql+psycopg://…")
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
        what = (
            "the directory is not writable"
            if probe == path
            else (f"cannot be created in {str(probe)!r}")
        )
        raise ValueError(f"{what}: {exc.strerror or exc}") from None
    return str(path)


def parse_variants(raw: str) -> tuple[str, ...]:
    from tracker.models import VARIANTS

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
    import httpx  # only `run` parses URLs like this: the other commands need not load it

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


def parse_record_mode(raw: str) -> str:
    if raw.strip().lower() not in ("all", "changes"):
        raise ValueError("the recording mode is all or changes")
    return raw.strip().lower()


def parse_log_format(raw: str) -> str:
    if raw.strip().lower() not in ("text", "json"):
        raise ValueError("the log format is text or json")
    return raw.strip().lower()


def parse_port(raw: str) -> int:
    if not raw.strip().isdigit() or not 0 <= int(raw) <= 65535:
        raise ValueError("not a port number from 0 to 65535")
    return int(raw)


@dataclass(frozen=True)
class Option:
    """One setting: where it comes from and how its text is parsed."""

    field: str
    variable: str
    flag: str
    parse: Callable[[str], Any]
    help: str
    #: Said instead of the default value when that value is not what an unset option means.
    default_text: str | None = None
    #: How a bad value is quoted in its error message, when it may hold a secret.
    mask: Callable[[str], str] | None = None

    def describe(self) -> str:
        default = self.default_text or getattr(Settings(), self.field)
        if isinstance(default, tuple):
            default = ",".join(default)
        return f"{self.help} (env: {self.variable}; default: {default or 'none'})"


OPTIONS: tuple[Option, ...] = (
    Option("database_url", "TRACKER_DATABASE_URL", "--db", parse_database_url, "database URL"),
    Option("api_base", "TRACKER_API_BASE", "--api-base", parse_api_base, "API base URL"),
    Option(
        "poll_interval",
        "TRACKER_POLL_INTERVAL",
        "--interval",
        parse_seconds,
        "seconds between two polls of a task",
    ),
    Option(
        "concurrency",
        "TRACKER_CONCURRENCY",
        "--concurrency",
        parse_concurrency,
        "requests in flight at once",
    ),
    Option(
        "request_timeout",
        "TRACKER_REQUEST_TIMEOUT",
        "--request-timeout",
        parse_seconds,
        "seconds before a request is abandoned",
    ),
    Option(
        "give_up_after",
        "TRACKER_GIVE_UP_AFTER",
        "--give-up-after",
        parse_duration,
        "finish a task as timed_out this long after registration (90s, 15m, 24h, 7d)",
    ),
    Option(
        "log_format",
        "TRACKER_LOG_FORMAT",
        "--log-format",
        parse_log_format,
        "log lines as text or json (one object per line)",
    ),
    Option(
        "proxy",
        "TRACKER_PROXY",
        "--proxy",
        parse_proxy_choice,
        "send HTTP through this http://[user:password@]host:port proxy, or none; NO_PROXY "
        "still applies",
        default_text="from HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY",
        mask=shown,
    ),
)
# Settings of `run` for what happens after a task finishes (issue #6).
FOLLOW_UP_OPTIONS: tuple[Option, ...] = (
    Option(
        "download_dir",
        "TRACKER_DOWNLOAD_DIR",
        "--download-dir",
        parse_download_dir,
        "save completed videos' files in this directory",
    ),
    Option(
        "download_variants",
        "TRACKER_DOWNLOAD_VARIANTS",
        "--download-variants",
        parse_variants,
        "which files to save: video, thumbnail, spritesheet (comma-separated)",
    ),
    Option(
        "notify_url",
        "TRACKER_NOTIFY_URL",
        "--notify-url",
        parse_http_url,
        "POST a JSON event here once per finished task (signed with TRACKER_NOTIFY_SECRET)",
    ),
    Option(
        "on_finish",
        "TRACKER_ON_FINISH",
        "--on-finish",
        parse_command,
        "run this command once per finished task, with the event in TRACKER_* variables",
    ),
    Option(
        "on_finish_timeout",
        "TRACKER_ON_FINISH_TIMEOUT",
        "--on-finish-timeout",
        parse_seconds,
        "seconds before an --on-finish command is killed",
    ),
    Option(
        "webhook_port",
        "TRACKER_WEBHOOK_PORT",
        "--webhook-port",
        parse_port,
        "receive the API's signed video webhooks on this port (needs TRACKER_WEBHOOK_SECRET)",
    ),
    Option(
        "webhook_host",
        "TRACKER_WEBHOOK_HOST",
        "--webhook-host",
        str,
        "the address the webhook receiver listens on",
    ),
)
# Settings of `run` for operating it (issue #7); `poll` takes --record too.
OPERATING_OPTIONS: tuple[Option, ...] = (
    Option(
        "metrics_port",
        "TRACKER_METRICS_PORT",
        "--metrics-port",
        parse_port,
        "serve Prometheus /metrics and /healthz on this port",
    ),
    Option(
        "metrics_host",
        "TRACKER_METRICS_HOST",
        "--metrics-host",
        str,
        "the address the metrics server listens on",
    ),
    Option(
        "retain",
        "TRACKER_RETAIN",
        "--retain",
        parse_duration,
        "every day, prune snapshots of finished tasks older than this (e.g. 30d)",
    ),
    Option(
        "record",
        "TRACKER_RECORD",
        "--record",
        parse_record_mode,
        "which polls become snapshots: all, or changes (a new status, progress or error, "
        "and the last one)",
    ),
)
OPTIONS_BY_FIELD = {
    option.field: option for option in OPTIONS + FOLLOW_UP_OPTIONS + OPERATING_OPTIONS
}
NOTIFY_SECRET_VARIABLE = "TRACKER_NOTIFY_SECRET"
WEBHOOK_SECRET_VARIABLE = "TRACKER_WEBHOOK_SECRET"
_SECRET_VARIABLES = (
    TOKEN_VARIABLE,
    TOKEN_FILE_VARIABLE,
    NOTIFY_SECRET_VARIABLE,
    WEBHOOK_SECRET_VARIABLE,
)


def load_settings(
    flags: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from flags (``{field: text or None}``) over ``TRACKER_*`` variables over defaults.

    ``flags`` may also hold ``token_file``. Raises ConfigError naming the offending source.
    """
    flags = flags or {}
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for option in OPTIONS_BY_FIELD.values():
        raw, source = flags.get(option.field), option.flag
        if raw is None:
            raw, source = environ.get(option.variable) or None, option.variable
        if raw is None:
            continue
        try:
            values[option.field] = option.parse(raw)
        except ValueError as exc:
            quoted = option.mask(raw) if option.mask else raw
            raise ConfigError(f"{source} {quoted!r}: {exc}") from None
    values["proxy"] = resolve_proxies(values.get("proxy"), environ)
    values["token"] = _load_token(flags.get("token_file"), environ)
    for name, variable in (
        ("notify_secret", NOTIFY_SECRET_VARIABLE),
        ("webhook_secret", WEBHOOK_SECRET_VARIABLE),
    ):
        if environ.get(variable):
            values[name] = _checked_secret(environ[variable], variable)
    return Settings(**values)


def check_daemon_settings(settings: Settings) -> None:
    """What only a daemon needs, checked when one starts (a shared environment file set up
    for the daemon must not stop `tracker list`)."""
    if settings.webhook_port is not None and settings.webhook_secret is None:
        raise ConfigError(
            f"--webhook-port needs {WEBHOOK_SECRET_VARIABLE}: unsigned webhooks are refused"
        )


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for commands tracker runs (--on-finish): this one without tracker's
    settings (the database URL and the notify URL may hold passwords; the token and secrets
    are secret) and without PostgreSQL's own connection variables."""
    environ = os.environ if environ is None else environ
    return {
        name: value
        for name, value in environ.items()
        if not name.startswith(("TRACKER_", "PG")) and name not in _SECRET_VARIABLES
    }


def _checked_secret(text: str, source: str) -> Secret:
    from tracker.webhooks import secret_key

    try:
        key = secret_key(text.strip())
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if len(key) < MIN_SECRET_BYTES:
        # An empty or tiny key signs anything an attacker likes.
        raise ConfigError(f"{source}: the secret must be at least {MIN_SECRET_BYTES} bytes")
    return Secret(text.strip())


def _load_token(token_file_flag: str | None, environ: Mapping[str, str]) -> Secret | None:
    if token_file_flag is not None:
        return _read_token_file(token_file_flag, "--token-file")
    if environ.get(TOKEN_VARIABLE):
        return checked_token(environ[TOKEN_VARIABLE], TOKEN_VARIABLE)
    if environ.get(TOKEN_FILE_VARIABLE):
        return _read_token_file(environ[TOKEN_FILE_VARIABLE], TOKEN_FILE_VARIABLE)
    return None


def _read_token_file(path: str, source: str) -> Secret:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable text"
        raise ConfigError(f"{source} {path!r}: cannot read the token file: {reason}") from None
    return checked_token(text, f"{source} {path!r}")


def checked_token(text: str, source: str) -> Secret:
    token = text.strip()
    if not token:
        raise ConfigError(f"{source}: the API token is empty")
    if not all("!" <= char <= "~" for char in token):
        # It travels in an HTTP header: printable ASCII only. Said without showing the token.
        raise ConfigError(
            f"{source}: the API token may only hold printable ASCII characters without spaces"
        )
    return Secret(token)
