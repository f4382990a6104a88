"""The providers file: each provider's API, key and limits; one clear line for anything wrong,
never a token's value."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tracker import Tracker
from tracker.core.secrets import Secret
from tracker.errors import ConfigError, UnknownProviderError
from tracker.settings import child_environment, load_settings
from tracker.settings.commands import POLL, RUN, SERVE_ALONE
from tracker.settings.providers import Provider, declared_provider, read_providers

TOKEN_B = "sk-relay-b-0123456789"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "tracker.toml"
    path.write_text(text)
    return str(path)


def test_providers_are_read_with_their_keys_and_limits(tmp_path: Path) -> None:
    """Each [providers.NAME] table gives a provider: its API base, its token from the variable
    or the file it names, and its own status path, concurrency, interval and timeout."""
    token_file = tmp_path / "openai.token"
    token_file.write_text("sk-openai-0123456789\n")
    path = write(
        tmp_path,
        f"""
[providers.openai]
api_base = "https://api.openai.com/v1"
token_file = "{token_file}"

[providers.relay-b]
api_base = "https://relay-b.example"
token_env = "RELAY_B_TOKEN"
status_path = "/v1/video/query?id={{id}}"
concurrency = 64
interval = "10s"
request_timeout = 20
""",
    )
    openai, relay = read_providers(path, {"RELAY_B_TOKEN": TOKEN_B})
    assert (openai.name, openai.api_base, openai.token) == (
        "openai",
        "https://api.openai.com",
        Secret("sk-openai-0123456789"),
    )
    assert (openai.concurrency, openai.interval, openai.request_timeout) == (None, None, None)
    assert (relay.name, relay.token, relay.status_path) == (
        "relay-b",
        Secret(TOKEN_B),
        "/v1/video/query?id={id}",
    )
    assert (relay.concurrency, relay.interval, relay.request_timeout) == (64, 10.0, 20.0)
    assert TOKEN_B not in repr(relay)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[providers.a]\ntoken_env = 'T'\n", "provider 'a': api_base is missing"),
        ("[providers.a]\napi_base = 'ftp://x'\ntoken_env = 'T'\n", "api_base 'ftp://x'"),
        ("[providers.a]\napi_base = 'https://x'\n", "give token_env"),
        ("[providers.a]\napi_base = 'https://x'\ntoken_env = 'UNSET'\n", "'UNSET' is not set"),
        ("[providers.a]\napi_base = 'https://x'\ntoken_env = 'T'\ncolour = 1\n", "'colour'"),
        ("[providers.a]\napi_base = 'https://x'\ntoken_env = 'T'\nconcurrency = 0\n", "between"),
        ("[providers.'a b']\napi_base = 'https://x'\ntoken_env = 'T'\n", "invalid provider 'a b'"),
        ("[other]\n", "unknown table 'other'"),
        ("", "no [providers.NAME] table"),
        ("[providers.a\n", "not TOML"),
    ],
)
def test_what_cannot_be_used_is_one_line_naming_the_provider(
    tmp_path: Path, text: str, message: str
) -> None:
    """A missing key, a bad value, an unset token variable, an unknown key or table: a
    ConfigError naming the file, the provider and the key."""
    with pytest.raises(ConfigError) as caught:
        read_providers(write(tmp_path, text), {"T": TOKEN_B})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_token_is_refused_without_showing_it(tmp_path: Path) -> None:
    """A token with a space in it cannot travel in a header: refused, its value not shown."""
    path = write(tmp_path, "[providers.a]\napi_base = 'https://x'\ntoken_env = 'T'\n")
    with pytest.raises(ConfigError) as caught:
        read_providers(path, {"T": "sk with a space 123"})
    assert "sk with a space" not in str(caught.value)


def test_a_token_written_where_its_variable_belongs_is_refused_unquoted(tmp_path: Path) -> None:
    """`token_env = "sk-…"` (the token itself, by mistake): refused, and the value is not in
    the message, which reaches a terminal or a journal."""
    path = write(tmp_path, f"[providers.a]\napi_base = 'https://x'\ntoken_env = '{TOKEN_B}'\n")
    with pytest.raises(ConfigError) as caught:
        read_providers(path, {})
    assert "token_env must be the name of an environment variable" in str(caught.value)
    assert TOKEN_B not in str(caught.value)


def test_a_bad_proxy_is_quoted_without_its_password(tmp_path: Path) -> None:
    """A proxy URL the file gets wrong (https:// to the proxy) is refused naming it, its
    password masked as --proxy's is."""
    text = (
        "[providers.a]\napi_base = 'https://x'\ntoken_env = 'T'\n"
        "proxy = 'https://user:pr0xy-s3cret@proxy.corp:3128'\n"
    )
    with pytest.raises(ConfigError) as caught:
        read_providers(write(tmp_path, text), {"T": TOKEN_B})
    assert "provider 'a': proxy" in str(caught.value)
    assert "pr0xy-s3cret" not in str(caught.value)


def test_the_token_variables_are_kept_from_the_commands_tracker_runs(tmp_path: Path) -> None:
    """The variable a provider's token came from is remembered, and an --on-finish command's
    environment is made without it."""
    path = write(tmp_path, "[providers.a]\napi_base = 'https://x'\ntoken_env = 'RELAY_KEY'\n")
    environ = {"RELAY_KEY": TOKEN_B, "PATH": "/usr/bin"}
    [provider] = read_providers(path, environ)
    assert provider.token_env == "RELAY_KEY"
    assert child_environment(environ, also_hidden=[provider.token_env]) == {"PATH": "/usr/bin"}


def test_with_a_providers_file_the_single_providers_settings_are_not_read(
    tmp_path: Path,
) -> None:
    """With --config, TRACKER_API_BASE, TRACKER_STATUS_PATH and the token variables are not
    read: a stale, unreadable TRACKER_API_TOKEN_FILE in a shared environment does not stop the
    daemon, whose providers name their own tokens."""
    path = write(tmp_path, "[providers.a]\napi_base = 'https://x'\ntoken_env = 'T'\n")
    environ = {
        "T": TOKEN_B,
        "TRACKER_API_TOKEN_FILE": str(tmp_path / "gone.token"),
        "TRACKER_API_BASE": "not a url",
    }
    settings = load_settings(POLL, {"config": path}, environ)
    assert [p.name for p in settings.polled_providers()] == ["a"]
    assert settings.token is None
    with pytest.raises(ConfigError, match="TRACKER_API_BASE"):  # read without the file
        load_settings(POLL, {}, environ)


def test_a_provider_is_made_of_named_fields_only() -> None:
    """A Provider takes its fields by name: with a token, a status path and limits all of one
    type, a positional call could put one in another's place."""
    with pytest.raises(TypeError):
        Provider("relay-b", "https://relay-b.example")  # type: ignore[misc]
    provider = Provider(name="relay-b", api_base="https://relay-b.example", concurrency=4)
    assert (provider.name, provider.concurrency, provider.interval) == ("relay-b", 4, None)


def test_serve_reads_the_providers_names_not_their_tokens(tmp_path: Path) -> None:
    """`serve` polls nothing: it reads the file's providers (a file it cannot use still stops
    it) without their tokens, which need not be set where it runs; `run` needs them."""
    path = write(tmp_path, "[providers.a]\napi_base = 'https://x'\ntoken_env = 'UNSET'\n")
    settings = load_settings(SERVE_ALONE, {"config": path}, {})
    assert [(p.name, p.token) for p in settings.providers] == [("a", None)]
    with pytest.raises(ConfigError, match="'UNSET' is not set"):
        load_settings(RUN, {"config": path}, {})
    broken = write(tmp_path, "[providers.a]\napi_base = 'https://x'\n")
    with pytest.raises(ConfigError, match="give token_env"):
        load_settings(SERVE_ALONE, {"config": broken}, {})


def test_tasks_are_registered_only_under_a_declared_provider(tmp_path: Path) -> None:
    """One rule for every way of registering: without a providers file any name is taken;
    with one, only its providers, `default` when none is given (the HTTP API's 422 and
    `tracker add`'s exit 2 come from this error)."""
    relay = Provider(name="relay-b", api_base="https://relay-b.example")
    both = (Provider(name="default", api_base="https://api.example"), relay)
    assert declared_provider("relay-c", ()) == "relay-c"
    assert declared_provider(None, both) == "default"
    assert declared_provider("relay-b", both) == "relay-b"
    with pytest.raises(UnknownProviderError) as unknown:
        declared_provider("relay-c", both)
    assert str(unknown.value) == (
        "unknown provider 'relay-c': the providers file declares default, relay-b"
    )
    assert (unknown.value.given, unknown.value.declared) == ("relay-c", ["default", "relay-b"])
    with pytest.raises(UnknownProviderError, match=r"no provider given, .* no 'default'"):
        declared_provider(None, (relay,))


def test_the_python_api_registers_only_under_a_declared_provider(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'tracker.db'}"
    providers = (Provider(name="relay-b", api_base="https://relay-b.example"),)
    with Tracker(database_url=database) as tracker:
        tracker.settings = replace(tracker.settings, providers=providers)
        with pytest.raises(UnknownProviderError, match="no provider given"):
            tracker.add(["video_a"])
        with pytest.raises(UnknownProviderError, match="unknown provider 'relay-c'"):
            tracker.add_stream(["video_b"], provider="relay-c")
        assert tracker.add(["video_c"], provider="relay-b").added == ["video_c"]
        assert [task.task_id for task in tracker.tasks()] == ["video_c"]
