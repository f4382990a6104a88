"""Providers (docs/providers.md): the APIs and keys tasks are polled on, declared in a TOML
file, one table per provider:

    [providers.relay-b]
    api_base = "https://relay-b.example"
    token_env = "RELAY_B_TOKEN"        # or token_file = "/etc/tracker/relay-b.token"
    status_path = "/v1/video/query?id={id}"
    concurrency = 64                   # requests in flight for this provider alone
    interval = "10s"
    request_timeout = "20s"
    proxy = "http://proxy.corp:3128"   # or "none"
    webhook_secret_env = "RELAY_B_WEBHOOK_SECRET"   # or webhook_secret_file = "…"

Without a file, the one provider ``default`` is made of ``TRACKER_API_BASE``, the token and the
polling settings, so nothing changes for a tracker without one. Tokens are read here, from the
variable or the file the provider names, and are never stored, printed or logged.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tracker.core.ids import (
    DEFAULT_PROVIDER,
    DEFAULT_STATUS_PATH,
    check_provider,
    parse_status_path,
)
from tracker.core.secrets import Secret
from tracker.errors import ConfigError, UnknownProviderError, UsageError
from tracker.settings.proxies import Proxies, parse_proxy_choice, resolve_proxies, shown
from tracker.settings.values import (
    checked_token,
    checked_webhook_secret,
    parse_api_base,
    parse_concurrency,
    parse_short_duration,
)

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYS = frozenset(
    {
        "api_base",
        "token_env",
        "token_file",
        "status_path",
        "concurrency",
        "interval",
        "request_timeout",
        "proxy",
        "webhook_secret_env",
        "webhook_secret_file",
    }
)


@dataclass(frozen=True, kw_only=True)
class Provider:
    """One API and key. Unset limits (None) take the daemon's own settings."""

    name: str
    api_base: str
    token: Secret | None = field(default=None, repr=False)
    status_path: str = DEFAULT_STATUS_PATH
    concurrency: int | None = None
    interval: float | None = None
    request_timeout: float | None = None
    proxy: Proxies | None = None
    # The variable the token came from, kept from the commands tracker runs (--on-finish).
    token_env: str | None = None
    # What this API signs its own webhooks with: a webhook it signs names this provider.
    webhook_secret: Secret | None = field(default=None, repr=False)
    webhook_secret_env: str | None = None


T = TypeVar("T")


def declared_provider(given: str | None, providers: Sequence[Provider]) -> str:
    """The provider tasks are registered under (``given``, else ``default``), if ``providers``
    (a providers file's; empty without one: any name) declare it; else UnknownProviderError, as
    a task of a provider no daemon polls would wait for ever (UsageError for a name that cannot
    be one)."""
    provider = DEFAULT_PROVIDER if given is None else check_provider(given)
    declared = sorted(known.name for known in providers)
    if declared and provider not in declared:
        raise UnknownProviderError(given, declared)
    return provider


def provider_setting(own: T | None, daemons: T) -> T:
    """A provider's own setting, else the daemon's (docs/providers.md)."""
    return daemons if own is None else own


def default_provider(
    api_base: str, token: Secret | None, status_path: str, proxy: Proxies
) -> Provider:
    """The provider of a tracker without a providers file."""
    return Provider(
        name=DEFAULT_PROVIDER, api_base=api_base, token=token, status_path=status_path, proxy=proxy
    )


def parse_config_path(text: str) -> str:
    path = text.strip()
    if not path:
        raise ValueError("a path to a TOML file")
    return path


def read_providers(
    path: str, environ: Mapping[str, str], *, tokens: bool = True
) -> tuple[Provider, ...]:
    """The providers a TOML file declares; ConfigError naming the file, the provider and the
    key for anything that cannot be used (never a token's value). Without ``tokens`` (a
    command that polls nothing: ``serve`` wants the names), no token is read, and each
    provider's is None."""
    try:
        document = tomllib.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config {path!r}: cannot read it: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config {path!r}: not TOML: {exc}") from None
    tables = document.get("providers")
    unknown = set(document) - {"providers"}
    if unknown:
        raise ConfigError(f"config {path!r}: unknown table {sorted(unknown)[0]!r} (providers)")
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"config {path!r}: no [providers.NAME] table")
    return tuple(_provider(path, name, table, environ, tokens) for name, table in tables.items())


def _provider(
    path: str, name: str, table: Any, environ: Mapping[str, str], tokens: bool
) -> Provider:
    where = f"config {path!r}, provider {name!r}"
    try:
        check_provider(name)
    except UsageError as exc:
        raise ConfigError(f"config {path!r}: {exc}") from None
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: not a table")
    extra = set(table) - _KEYS
    if extra:
        raise ConfigError(f"{where}: unknown key {sorted(extra)[0]!r}")
    values: dict[str, Any] = {}
    for key, parse in (
        ("api_base", parse_api_base),
        ("status_path", parse_status_path),
        ("concurrency", parse_concurrency),
        ("interval", parse_short_duration),
        ("request_timeout", parse_short_duration),
        ("proxy", parse_proxy_choice),
    ):
        if key in table:
            raw = table[key]
            if not isinstance(raw, str | int | float) or isinstance(raw, bool):
                raise ConfigError(f"{where}: {key} must be a string or a number")
            try:
                values[key] = parse(str(raw))
            except ValueError as exc:
                # A proxy URL may hold a password: quoted as --proxy's is.
                quoted = shown(str(raw)) if key == "proxy" else str(raw)
                raise ConfigError(f"{where}: {key} {quoted!r}: {exc}") from None
    if "api_base" not in values:
        raise ConfigError(f"{where}: api_base is missing")
    if "proxy" in values:
        values["proxy"] = resolve_proxies(values["proxy"], environ)
    values["token"] = _secret(where, "token", table, environ, checked_token, read=tokens)
    if table.get("token_env") is not None:
        values["token_env"] = str(table["token_env"])
    if "webhook_secret_env" in table or "webhook_secret_file" in table:
        values["webhook_secret"] = _secret(
            where, "webhook_secret", table, environ, checked_webhook_secret
        )
        if table.get("webhook_secret_env") is not None:
            values["webhook_secret_env"] = str(table["webhook_secret_env"])
    return Provider(name=name, **values)


def _secret(
    where: str,
    key: str,
    table: Mapping[str, Any],
    environ: Mapping[str, str],
    check: Callable[[str], Secret],
    *,
    read: bool = True,
) -> Secret | None:
    """The secret ``key_env`` (a variable's name) or ``key_file`` gives, checked; without
    ``read``, only where it is said to be is checked, and None given."""
    variable, path = table.get(f"{key}_env"), table.get(f"{key}_file")
    if (variable is None) == (path is None):
        raise ConfigError(f"{where}: give {key}_env (a variable's name) or {key}_file")
    if variable is not None and (
        not isinstance(variable, str) or not _VARIABLE.fullmatch(variable)
    ):
        # Not quoted: a secret written here by mistake must not reach a log.
        raise ConfigError(f"{where}: {key}_env must be the name of an environment variable")
    if not read:
        return None
    if variable is not None:
        text = environ.get(variable, "")
        source = f"{where}: the variable {variable!r}"
        if not text:
            raise ConfigError(f"{source} is not set")
    else:
        source = f"{where}: {key}_file {path!r}"
        try:
            text = Path(str(path)).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
            raise ConfigError(f"{source}: cannot read it: {reason}") from None
    try:
        return check(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
