"""Settings from flags over ``TRACKER_*`` variables over defaults: the only code that reads
the environment. Values arrive as text from either source and are parsed by the option's
parser, so a bad value gets the same one-line message whichever way it came in, naming where
it came from."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from tracker.core.secrets import Secret
from tracker.errors import ConfigError
from tracker.settings.options import (
    OPTIONS,
    SECRET_VARIABLES,
    SERVER_TOKENS_FILE_VARIABLE,
    SERVER_TOKENS_VARIABLE,
    TOKEN_FILE_VARIABLE,
    TOKEN_VARIABLE,
    Settings,
)
from tracker.settings.providers import read_providers
from tracker.settings.proxies import resolve_proxies
from tracker.settings.values import (
    checked_server_tokens,
    checked_token,
    checked_webhook_secret,
)

_SINGLE_PROVIDER = ("api_base", "status_path", "token")


def load_settings(
    fields: Collection[str],
    flags: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    spelled: Mapping[str, str] | None = None,
) -> Settings:
    """The settings named in ``fields`` (the others keep their defaults), each from its flag
    (``flags`` maps fields, and ``token_file``, to text or None), else its variable.
    ``spelled`` maps fields to the flag given when it was another spelling (an alias) than
    the option's own.

    Raises ConfigError naming the offending flag or variable, as it was given.
    """
    flags = flags or {}
    spelled = spelled or {}
    environ = os.environ if environ is None else environ
    # A command that reads no API token (serve) reads no provider's token either.
    reads_tokens = "token" in fields
    if "config" in fields and (flags.get("config") or environ.get(OPTIONS["config"].variable)):
        # The providers file names every API and token: the single provider's settings are
        # not read, so a stale one in the environment cannot stop the daemon.
        fields = [name for name in fields if name not in _SINGLE_PROVIDER]
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in fields:
        option = OPTIONS.get(name)
        if option is None:
            continue
        raw, source = flags.get(name), spelled.get(name, option.flag)
        if raw is None:
            raw, source = environ.get(option.variable) or None, option.variable
        if raw is not None:
            values[name] = _parsed(name, raw, source)
            sources[name] = source
    if "proxy" in fields:
        values["proxy"] = resolve_proxies(values.get("proxy"), environ)
    if values.get("config"):
        values["providers"] = read_providers(values["config"], environ, tokens=reads_tokens)
    if "token" in fields:
        values["token"] = _load_token(flags.get("token_file"), environ)
    for name in ("notify_secret", "webhook_secret"):
        variable = SECRET_VARIABLES[name]
        if name in fields and environ.get(variable):
            values[name] = _secret(name, environ[variable], variable)
    if "server_tokens" in fields:
        values["server_tokens"] = _load_server_tokens(environ)
    return Settings(**values, sources=sources)


def settings_from_keywords(base: Settings | None = None, **keywords: object) -> Settings:
    """Settings for the Python API: each keyword is a field of Settings, given as its value or
    as the text a flag would take; errors name the keyword."""
    values: dict[str, Any] = {}
    sources = {**(base.sources if base else {}), **{name: f"{name}=" for name in keywords}}
    for name, value in keywords.items():
        if name == "token":
            values[name] = (
                _secret(name, value, "token") if isinstance(value, str) else _as_secret(value)
            )
        elif name == "server_tokens":
            text = ",".join(value) if isinstance(value, tuple | list) else str(value)
            try:
                values[name] = checked_server_tokens(text)
            except ValueError as exc:
                raise ConfigError(f"server_tokens=: {exc}") from None
        elif name in SECRET_VARIABLES:
            values[name] = None if value is None else _secret(name, str(value), name)
        elif name not in OPTIONS:
            raise ConfigError(f"unknown setting {name}=")
        elif value is None:
            values[name] = None
        elif name == "proxy":  # the Python API reads no environment: no NO_PROXY either
            values[name] = resolve_proxies(_parsed(name, str(value), "proxy="), {})
        else:
            text = ",".join(value) if isinstance(value, tuple | list) else str(value)
            values[name] = _parsed(name, text, f"{name}=")
    if values.get("config"):  # token_env names a variable: the one place reading it is here
        values["providers"] = read_providers(values["config"], os.environ)
    return Settings(**{**(vars(base) if base else {}), **values, "sources": sources})


def _parsed(name: str, raw: str, source: str) -> Any:
    option = OPTIONS[name]
    try:
        return option.parse(raw)
    except ValueError as exc:
        quoted = option.mask(raw) if option.mask else raw
        quoted = quoted if len(quoted) <= 200 else quoted[:200] + "…"
        raise ConfigError(f"{source} {quoted!r}: {exc}") from None


def _as_secret(value: object) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    raise ConfigError("token=: a string or None")


def _secret(name: str, text: str, source: str) -> Secret:
    check = checked_token if name == "token" else checked_webhook_secret
    try:
        return check(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _load_token(token_file_flag: str | None, environ: Mapping[str, str]) -> Secret | None:
    if token_file_flag is not None:
        return _read_token_file(token_file_flag, "--token-file")
    if environ.get(TOKEN_VARIABLE):
        return _secret("token", environ[TOKEN_VARIABLE], TOKEN_VARIABLE)
    if environ.get(TOKEN_FILE_VARIABLE):
        return _read_token_file(environ[TOKEN_FILE_VARIABLE], TOKEN_FILE_VARIABLE)
    return None


def _read_token_file(path: str, source: str) -> Secret:
    return _secret("token", _read_secret_file(path, source), f"{source} {path!r}")


def _read_secret_file(path: str, source: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable text"
        raise ConfigError(f"{source} {path!r}: cannot read the token file: {reason}") from None


def _load_server_tokens(environ: Mapping[str, str]) -> tuple[Secret, ...]:
    """From TRACKER_SERVER_TOKENS, and from the file TRACKER_SERVER_TOKENS_FILE names (one per
    line or comma-separated); both may be set."""
    sources = []
    if environ.get(SERVER_TOKENS_VARIABLE):
        sources.append((environ[SERVER_TOKENS_VARIABLE], SERVER_TOKENS_VARIABLE))
    path = environ.get(SERVER_TOKENS_FILE_VARIABLE)
    if path:
        source = f"{SERVER_TOKENS_FILE_VARIABLE} {path!r}"
        sources.append((_read_secret_file(path, SERVER_TOKENS_FILE_VARIABLE), source))
    tokens: list[Secret] = []
    for text, source in sources:
        try:
            tokens += checked_server_tokens(text)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    return tuple(dict.fromkeys(tokens))


def child_environment(
    environ: Mapping[str, str] | None = None, also_hidden: Collection[str] = ()
) -> dict[str, str]:
    """The environment for commands tracker runs (``--on-finish``): this one without the
    secrets (the API token, its file, the notification and webhook secrets, and the variables
    in ``also_hidden``: the providers' tokens) and without PostgreSQL's password variables."""
    environ = os.environ if environ is None else environ
    hidden = {
        *also_hidden,
        *SECRET_VARIABLES.values(),
        TOKEN_FILE_VARIABLE,
        SERVER_TOKENS_FILE_VARIABLE,
        "PGPASSWORD",
        "PGPASSFILE",
    }
    return {name: value for name, value in environ.items() if name not in hidden}
