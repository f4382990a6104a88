"""Every setting once: its field in ``Settings``, its flag, its ``TRACKER_*`` variable, its
parser and its help; and which commands use which (a command parses only its own, so that a
daemon's setting shared through the environment never stops ``tracker list``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tracker.core.ids import DEFAULT_PROVIDER, DEFAULT_STATUS_PATH, parse_status_path
from tracker.core.secrets import Secret
from tracker.errors import ConfigError
from tracker.settings.providers import Provider, default_provider, parse_config_path
from tracker.settings.proxies import DIRECT, Proxies, parse_proxy_choice, shown
from tracker.settings.values import (
    DAY,
    choice,
    parse_api_base,
    parse_command,
    parse_concurrency,
    parse_database_url,
    parse_download_dir,
    parse_duration,
    parse_flag,
    parse_host,
    parse_host_list,
    parse_http_url,
    parse_origins,
    parse_port,
    parse_short_duration,
    parse_variants,
)

DEFAULT_DATABASE_URL = "sqlite:///tracker.db"
DEFAULT_API_BASE = "https://api.gpt.ge"
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Settings:
    """Everything a tracker needs to know, already parsed and validated (docs: the
    settings tables of docs/cli.md)."""

    database_url: str = DEFAULT_DATABASE_URL
    api_base: str = DEFAULT_API_BASE
    status_path: str = DEFAULT_STATUS_PATH
    token: Secret | None = field(default=None, repr=False)
    poll_interval: float = 15.0
    concurrency: int = 32
    request_timeout: float = 30.0
    give_up_after: float = DAY
    log_format: str = "text"
    record: str = "all"
    proxy: Proxies = DIRECT
    # A providers file (docs/providers.md): its providers replace the one made of the above.
    config: str | None = None
    providers: tuple[Provider, ...] = ()
    # After a task finishes (docs/follow-ups.md)
    download_dir: str | None = None
    download_variants: tuple[str, ...] = ("video",)
    notify_url: str | None = None
    notify_secret: Secret | None = field(default=None, repr=False)
    on_finish: tuple[str, ...] | None = None
    on_finish_timeout: float = 60.0
    webhook_port: int | None = None
    webhook_host: str = LOOPBACK
    webhook_secret: Secret | None = field(default=None, repr=False)
    # Operating it (docs/operating.md)
    metrics_port: int | None = None
    metrics_host: str = LOOPBACK
    retain: float | None = None
    # The HTTP service (docs/http-api.md)
    http_host: str = LOOPBACK
    http_port: int | None = None
    server_tokens: tuple[Secret, ...] = field(default=(), repr=False)
    cors_origins: tuple[str, ...] = ()
    metrics_public: bool = False
    webhook_registers: bool = False
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # Where each setting that was given came from, as the user wrote it (the flag or its alias,
    # the variable, the keyword): what a message about its value names.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def source(self, name: str) -> str:
        """How to name the setting ``name`` in a message: as it was given, else its flag."""
        return self.sources.get(name) or OPTIONS[name].flag

    def notification_channels(self) -> tuple[str, ...]:
        """The channels every finished task is notified on (docs/follow-ups.md): ``webhook``
        with a notify URL, ``command`` with an on-finish command."""
        wanted = (("webhook", self.notify_url), ("command", self.on_finish))
        return tuple(channel for channel, setting in wanted if setting)

    def webhook_secrets(self) -> dict[str, Secret]:
        """Whose webhooks the receiver takes, by the secret that signs them: each provider's
        own (its file's ``webhook_secret_env``/``_file``), and TRACKER_WEBHOOK_SECRET for
        ``default`` unless it declares its own (docs/follow-ups.md)."""
        secrets = {p.name: p.webhook_secret for p in self.providers if p.webhook_secret}
        if self.webhook_secret is not None:
            secrets.setdefault(DEFAULT_PROVIDER, self.webhook_secret)
        return secrets

    def polled_providers(self) -> tuple[Provider, ...]:
        """The providers a daemon polls: those of the providers file, else ``default`` made of
        the API base, the token, the status path and the proxy."""
        if self.providers:
            return self.providers
        return (default_provider(self.api_base, self.token, self.status_path, self.proxy),)

    def require_tokens(self) -> None:
        """Raise ConfigError unless every provider polled has its token."""
        if any(provider.token is None for provider in self.polled_providers()):
            self.require_token()

    def require_token(self) -> Secret:
        if self.token is None:
            raise ConfigError(
                f"no API token: set {TOKEN_VARIABLE} or {TOKEN_FILE_VARIABLE} (or --token-file)"
            )
        return self.token


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
    #: A flag that takes no value (an on/off switch); its variable takes 1 or 0.
    switch: bool = False

    def describe(self, meaning: str | None = None, default_text: str | None = None) -> str:
        """Its help, with its variable and default; ``meaning`` and ``default_text`` say it
        for a command that uses the setting otherwise."""
        default = default_text or self.default_text or getattr(Settings(), self.field)
        if isinstance(default, tuple):
            default = ",".join(default)
        if isinstance(default, bool):
            default = "on" if default else "off"
        return f"{meaning or self.help} (env: {self.variable}; default: {default or 'none'})"


def _options(*options: Option) -> dict[str, Option]:
    return {option.field: option for option in options}


OPTIONS = _options(
    Option("database_url", "TRACKER_DATABASE_URL", "--db", parse_database_url, "database URL"),
    Option(
        "log_format",
        "TRACKER_LOG_FORMAT",
        "--log-format",
        choice("text", "json"),
        "log lines as text or json (one object per line)",
    ),
    Option("api_base", "TRACKER_API_BASE", "--api-base", parse_api_base, "API base URL"),
    Option(
        "status_path",
        "TRACKER_STATUS_PATH",
        "--status-path",
        parse_status_path,
        "where the API answers a task's status, {id} standing for the task ID",
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
    Option(
        "config",
        "TRACKER_CONFIG",
        "--config",
        parse_config_path,
        "a TOML file of [providers.NAME] tables: the APIs and keys tasks are polled on "
        "(docs/providers.md)",
        default_text="none: the one provider default, from the settings above",
    ),
    Option(
        "poll_interval",
        "TRACKER_POLL_INTERVAL",
        "--interval",
        parse_short_duration,
        "time between two polls of a task (15, 15s, 2m)",
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
        parse_short_duration,
        "time before a request is abandoned (30, 30s, 1m)",
    ),
    Option(
        "give_up_after",
        "TRACKER_GIVE_UP_AFTER",
        "--give-up-after",
        parse_duration,
        "finish a task as timed_out this long after registration or its last reopening "
        "(90s, 15m, 24h, 7d)",
    ),
    Option(
        "record",
        "TRACKER_RECORD",
        "--record",
        choice("all", "changes"),
        "which polls become snapshots: all, or changes (a new status, progress or error, "
        "and the last one)",
    ),
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
        parse_short_duration,
        "time before an --on-finish command is killed",
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
        parse_host,
        "the address the webhook receiver listens on",
    ),
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
        parse_host,
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
        "http_host",
        "TRACKER_HTTP_HOST",
        "--http-host",
        parse_host,
        "the address the HTTP service listens on (0.0.0.0: every interface; needs a server token)",
    ),
    Option(
        "http_port",
        "TRACKER_HTTP_PORT",
        "--http-port",
        parse_port,
        "serve the HTTP API, the dashboard, /metrics and /healthz on this port",
    ),
    Option(
        "cors_origins",
        "TRACKER_CORS_ORIGINS",
        "--cors-origins",
        parse_origins,
        "web origins allowed to call the API from a browser (comma-separated)",
    ),
    Option(
        "metrics_public",
        "TRACKER_METRICS_PUBLIC",
        "--metrics-public",
        parse_flag,
        "serve /metrics without a server token",
        switch=True,
    ),
    Option(
        "webhook_registers",
        "TRACKER_WEBHOOK_REGISTERS",
        "--webhook-registers",
        parse_flag,
        "the API's webhook for a task nobody registered registers it",
        switch=True,
    ),
    Option(
        "forwarded_allow_ips",
        "TRACKER_FORWARDED_ALLOW_IPS",
        "--forwarded-allow-ips",
        parse_host_list,
        "reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed",
    ),
)

# Secrets come from the environment (or a file) only, never a flag.
TOKEN_VARIABLE = "TRACKER_API_TOKEN"
TOKEN_FILE_VARIABLE = "TRACKER_API_TOKEN_FILE"
NOTIFY_SECRET_VARIABLE = "TRACKER_NOTIFY_SECRET"
WEBHOOK_SECRET_VARIABLE = "TRACKER_WEBHOOK_SECRET"
SERVER_TOKENS_VARIABLE = "TRACKER_SERVER_TOKENS"
SERVER_TOKENS_FILE_VARIABLE = "TRACKER_SERVER_TOKENS_FILE"
SECRET_VARIABLES = {
    "token": TOKEN_VARIABLE,
    "notify_secret": NOTIFY_SECRET_VARIABLE,
    "webhook_secret": WEBHOOK_SECRET_VARIABLE,
    "server_tokens": SERVER_TOKENS_VARIABLE,
}
