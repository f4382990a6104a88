"""Settings: defaults, variables, flags over variables, one-line errors, and each command
reading only its own settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tracker.errors import ConfigError
from tracker.settings import (
    OPTIONS,
    Secret,
    Settings,
    load_settings,
    parse_duration,
    settings_from_keywords,
)
from tracker.settings.commands import DOWNLOAD, EVERY_COMMAND, RUN
from tracker.settings.options import SECRET_VARIABLES

ALL = (*RUN, *OPTIONS)


def test_defaults_are_the_documented_ones() -> None:
    """With no flag and no variable, every setting has its documented default."""
    settings = load_settings(ALL, {}, environ={})
    assert settings == Settings(
        database_url="sqlite:///tracker.db",
        api_base="https://api.gpt.ge",
        token=None,
        poll_interval=15.0,
        concurrency=32,
        request_timeout=30.0,
        give_up_after=86400.0,
    )


def test_variables_are_read_and_flags_win_over_them(tmp_path: Path) -> None:
    """Each TRACKER_* variable sets its value; a flag for the same setting overrides it."""
    environ = {
        "TRACKER_DATABASE_URL": f"sqlite:///{tmp_path}/env.db",
        "TRACKER_API_BASE": "https://relay.example/",
        "TRACKER_POLL_INTERVAL": "2.5",
        "TRACKER_CONCURRENCY": "8",
        "TRACKER_REQUEST_TIMEOUT": "4",
        "TRACKER_GIVE_UP_AFTER": "15m",
        "TRACKER_API_TOKEN": "sk-env",
    }
    from_env = load_settings(ALL, {}, environ=environ)
    assert from_env.database_url == f"sqlite:///{tmp_path}/env.db"
    assert from_env.api_base == "https://relay.example"
    assert (from_env.poll_interval, from_env.concurrency) == (2.5, 8)
    assert (from_env.request_timeout, from_env.give_up_after) == (4.0, 900.0)
    assert from_env.token == Secret("sk-env")

    flags = {"poll_interval": "7", "give_up_after": "2h", "api_base": "http://127.0.0.1:9/v1"}
    from_flags = load_settings(ALL, flags, environ=environ)
    assert from_flags.poll_interval == 7.0
    assert from_flags.give_up_after == 7200.0
    assert from_flags.api_base == "http://127.0.0.1:9"
    assert from_flags.concurrency == 8


def test_an_empty_variable_counts_as_unset() -> None:
    """`TRACKER_POLL_INTERVAL=` in a unit file does not break start-up."""
    assert load_settings(ALL, {}, environ={"TRACKER_POLL_INTERVAL": ""}).poll_interval == 15.0


@pytest.mark.parametrize(
    ("flags", "environ", "message"),
    [
        ({"poll_interval": "abc"}, {}, "--interval 'abc': not a duration"),
        ({}, {"TRACKER_POLL_INTERVAL": "0"}, "TRACKER_POLL_INTERVAL '0': must be more than zero"),
        ({"concurrency": "0"}, {}, "--concurrency '0': must be between 1 and 10000"),
        ({"concurrency": "2.5"}, {}, "--concurrency '2.5': not a whole number"),
        ({"request_timeout": "nan"}, {}, "--request-timeout 'nan'"),
        ({"give_up_after": "soon"}, {}, "--give-up-after 'soon': not a duration"),
        ({"give_up_after": "0s"}, {}, "--give-up-after '0s': must be more than zero"),
        ({"api_base": "ftp://x"}, {}, "--api-base 'ftp://x': not an http"),
        ({"database_url": "nonsense"}, {}, "--db 'nonsense': not a database URL"),
        ({"database_url": "mysql://h/db"}, {}, "--db 'mysql://h/db': unsupported database"),
        ({"database_url": "sqlite://"}, {}, "needs a file path"),
        ({"database_url": "sqlite:////no/such/dir/t.db"}, {}, "'/no/such/dir' does not exist"),
    ],
)
def test_bad_values_raise_one_line_naming_flag_or_variable_and_value(
    flags: dict[str, str], environ: dict[str, str], message: str
) -> None:
    """A value that cannot be used raises ConfigError naming where it came from."""
    with pytest.raises(ConfigError) as caught:
        load_settings(ALL, flags, environ=environ)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("24h", 86400), ("7d", 604800), ("30", 30), ("1.5h", 5400)],
)
def test_durations_accept_seconds_and_units(text: str, seconds: float) -> None:
    """90s, 15m, 24h, 7d and bare seconds are all understood."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "field",
    ["poll_interval", "request_timeout", "give_up_after", "on_finish_timeout", "retain"],
)
def test_every_time_setting_takes_the_same_units(field: str) -> None:
    """`--interval 15s` is read like `--give-up-after 15s`: one parser for every duration."""
    assert getattr(load_settings(ALL, {field: "15s"}, environ={}), field) == 15.0
    assert getattr(load_settings(ALL, {field: "2m"}, environ={}), field) == 120.0
    assert getattr(load_settings(ALL, {field: "15"}, environ={}), field) == 15.0


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_postgresql_urls_mean_psycopg_3(scheme: str) -> None:
    """postgresql:// and postgres:// (the form hosting panels hand out) are taken as
    postgresql+psycopg:// (the driver the postgres extra installs)."""
    settings = load_settings(ALL, {"database_url": f"{scheme}://u@h/db"}, environ={})
    assert settings.database_url == "postgresql+psycopg://u@h/db"


def test_token_file_is_read_and_stripped_and_the_flag_wins(tmp_path: Path) -> None:
    """--token-file beats TRACKER_API_TOKEN, which beats TRACKER_API_TOKEN_FILE."""
    flag_file = tmp_path / "flag"
    flag_file.write_text("sk-from-flag-file\n")
    env_file = tmp_path / "env"
    env_file.write_text("sk-from-env-file")
    environ = {"TRACKER_API_TOKEN_FILE": str(env_file)}
    assert load_settings(ALL, {}, environ=environ).token == Secret("sk-from-env-file")
    environ["TRACKER_API_TOKEN"] = "sk-from-env"
    assert load_settings(ALL, {}, environ=environ).token == Secret("sk-from-env")
    flags = {"token_file": str(flag_file)}
    assert load_settings(ALL, flags, environ=environ).token == Secret("sk-from-flag-file")


def test_unreadable_or_empty_token_file_is_a_config_error_without_content(tmp_path: Path) -> None:
    """A token file that is missing or empty fails with its path, never its content."""
    with pytest.raises(ConfigError, match="cannot read the token file"):
        load_settings(ALL, {"token_file": str(tmp_path / "missing")}, environ={})
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(ConfigError, match="the token is empty"):
        load_settings(ALL, {"token_file": str(empty)}, environ={})


def test_the_token_never_shows_in_repr_or_str() -> None:
    """Printing the settings or the secret shows a mask, not the token."""
    settings = load_settings(ALL, {}, environ={"TRACKER_API_TOKEN": "sk-very-secret"})
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.token)
    assert settings.require_token().reveal() == "sk-very-secret"


def test_require_token_explains_where_a_token_comes_from() -> None:
    """Without a token, commands that poll fail naming both variables."""
    with pytest.raises(ConfigError, match="TRACKER_API_TOKEN or TRACKER_API_TOKEN_FILE"):
        Settings().require_token()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"api_base": "http://host:abc"}, "the port is not a number"),
        ({"give_up_after": "1000000d"}, "at most 3650d"),
        ({"request_timeout": "2d"}, "at most 1d"),
        ({"poll_interval": "90000"}, "at most 1d"),
    ],
)
def test_values_beyond_sane_bounds_are_refused(flags: dict[str, str], message: str) -> None:
    """Ports that are not numbers and durations of centuries are errors, not overflows."""
    with pytest.raises(ConfigError, match=message):
        load_settings(ALL, flags, environ={})


def test_a_token_that_cannot_travel_in_a_header_is_refused_without_showing_it() -> None:
    """Non-ASCII or spaced tokens fail with a clear message that does not contain them."""
    for token in ("sk-ünïcode", "sk with space", "sk-\x07bell"):
        with pytest.raises(ConfigError, match="printable ASCII") as caught:
            load_settings(ALL, {}, environ={"TRACKER_API_TOKEN": token})
        assert token not in str(caught.value)


@pytest.mark.parametrize(
    "environ",
    [
        {"TRACKER_API_TOKEN_FILE": "/no/such/token"},
        {"TRACKER_POLL_INTERVAL": "often"},
        {"TRACKER_NOTIFY_SECRET": "short"},
        {"TRACKER_WEBHOOK_SECRET": "short"},
        {"TRACKER_DOWNLOAD_DIR": "/no/such/dir/videos"},
        {"TRACKER_CONCURRENCY": "lots", "TRACKER_METRICS_PORT": "x"},
    ],
)
def test_a_command_reads_only_the_settings_it_uses(environ: dict[str, str]) -> None:
    """A daemon's setting in a shared environment does not stop a command that does not use
    it, and still stops the daemon."""
    assert load_settings(EVERY_COMMAND, {}, environ=environ) == Settings()
    with pytest.raises(ConfigError):
        load_settings(RUN, {}, environ=environ)


def test_download_reads_its_directory_but_not_the_polling_rhythm(tmp_path: Path) -> None:
    """`tracker download` uses the directory and the token, not the interval."""
    environ = {"TRACKER_DOWNLOAD_DIR": str(tmp_path), "TRACKER_POLL_INTERVAL": "often"}
    assert load_settings(DOWNLOAD, {}, environ=environ).download_dir == str(tmp_path)


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("poll_interval", 0),
        ("concurrency", 0),
        ("request_timeout", "-1"),
        ("give_up_after", "soon"),
        ("record", "some"),
        ("notify_url", "ftp://example.com"),
        ("on_finish_timeout", 0),
        ("metrics_port", 70000),
        ("api_base", "example.com"),
    ],
)
def test_the_python_api_names_keywords_not_flags(keyword: str, value: object) -> None:
    """`Tracker(poll_interval=0)` says `poll_interval=`, the name the caller wrote, never the
    command line's `--interval` or its variable."""
    from tracker import Tracker

    with pytest.raises(ConfigError) as raised:
        Tracker(**{keyword: value})
    message = str(raised.value)
    assert message.startswith(f"{keyword}= ")
    assert "--" not in message and "TRACKER_" not in message


def test_the_python_api_documents_every_keyword_it_takes() -> None:
    """docs/python-api.md names every setting `Tracker(...)` takes as a keyword (those of the
    options table and the secrets), and each one it names is taken."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "python-api.md").read_text()
    section = doc[doc.index("## Settings\n") : doc.index("## Methods\n")]
    named = set(re.findall(r"`([a-z_]+)`", section))
    keywords = {*OPTIONS, *SECRET_VARIABLES}
    assert keywords - named == set()
    assert named & set(vars(Settings())) <= keywords


def test_a_setting_is_named_as_it_was_given() -> None:
    """A message about a setting names it as the user gave it: the alias typed, the variable,
    the keyword; one not given is named by its flag."""
    settings = load_settings(
        ["http_host", "http_port", "metrics_host"],
        {"http_host": "0.0.0.0", "http_port": None, "metrics_host": "::"},
        environ={"TRACKER_HTTP_PORT": "8081"},
        spelled={"http_host": "--host"},
    )
    assert settings.source("http_host") == "--host"
    assert settings.source("metrics_host") == "--metrics-host"
    assert settings.source("http_port") == "TRACKER_HTTP_PORT"
    assert settings.source("webhook_host") == "--webhook-host"
    with pytest.raises(ConfigError, match=r"^--port 'x': "):
        load_settings(
            ["http_port"], {"http_port": "x"}, environ={}, spelled={"http_port": "--port"}
        )
    assert settings_from_keywords(http_host="0.0.0.0").source("http_host") == "http_host="


def test_a_missing_postgresql_driver_is_named_by_this_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The hint installs this project's extra, not the unrelated `tracker` on PyPI."""
    import importlib.metadata
    import importlib.util

    from tracker.settings import values

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a)
    )
    with pytest.raises(ValueError, match=r"pip install 'video-task-tracker\[postgres\]'"):
        values.parse_database_url("postgresql://db.internal/tracker")
    assert importlib.metadata.distribution(values.DISTRIBUTION).metadata["Name"] == (
        values.DISTRIBUTION
    )
