"""The providers file: each provider's API, key and limits; one clear line for anything wrong,
never a token's value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.core.secrets import Secret
from tracker.errors import ConfigError
from tracker.settings.providers import read_providers

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
