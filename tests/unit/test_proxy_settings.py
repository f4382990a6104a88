"""Choosing a proxy (docs/proxies.md): proxy URLs, NO_PROXY, the environment's variables against
--proxy and TRACKER_PROXY, and credentials that never show."""

from __future__ import annotations

import base64
import re

import pytest

from tracker.errors import ConfigError
from tracker.settings import OPTIONS, load_settings
from tracker.settings.proxies import (
    DIRECT,
    Proxy,
    parse_no_proxy,
    parse_proxy_choice,
    parse_proxy_url,
    resolve_proxies,
    shown,
)

SECRET = "s3cr3t-pa55word"

PROXY_FIELDS = ("proxy", "log_format")


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def test_credentials_are_percent_decoded_into_basic_proxy_authorization() -> None:
    """user:password in the URL, percent-decoded, is the Basic Proxy-Authorization value."""
    proxy = parse_proxy_url("http://us%40er:p%3Ass%2Fw@proxy.corp:3128")
    assert (proxy.host, proxy.port) == ("proxy.corp", 3128)
    assert proxy.authorization == basic("us@er:p:ss/w")
    assert parse_proxy_url("http://alone@proxy.corp:3128").authorization == basic("alone:")
    assert parse_proxy_url("http://proxy.corp:3128").authorization is None


@pytest.mark.parametrize(
    ("raw", "host", "port"),
    [
        ("proxy.corp:3128", "proxy.corp", 3128),  # no scheme: http://, as curl and httpx
        ("http://Proxy.Corp", "proxy.corp", 80),  # no port: http's, as httpx
        ("http://proxy.corp:3128/", "proxy.corp", 3128),
        ("HTTP://[::1]:8080", "::1", 8080),
    ],
)
def test_proxy_urls_are_read_as_httpx_reads_them(raw: str, host: str, port: int) -> None:
    """A missing scheme means http://, a missing port 80; IPv6 hosts keep their brackets
    when shown."""
    proxy = parse_proxy_url(raw)
    assert (proxy.host, proxy.port) == (host, port)
    assert str(proxy) == (f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("socks5://proxy.corp:1080", "SOCKS proxies are not supported"),
        ("socks5h://u:p@proxy.corp:1080", "SOCKS proxies are not supported"),
        ("https://proxy.corp:443", "https:// proxies (TLS to the proxy) are not supported"),
        ("ftp://proxy.corp", "not an http:// proxy URL"),
        ("http://proxy.corp:3128/path", "without a path"),
        ("http://proxy.corp:99999", "the port is not a number"),
        ("http://", "no host"),
        ("http://proxy corp", "spaces"),
    ],
)
def test_unusable_proxy_urls_are_refused_saying_why(raw: str, message: str) -> None:
    """SOCKS, TLS-to-proxy and malformed URLs are errors, never a silent direct connection."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_proxy_url(raw)


def test_a_proxy_prints_as_host_and_port_only() -> None:
    """str and repr of a proxy, and of settings holding it, never carry the credentials."""
    settings = load_settings(
        PROXY_FIELDS, {"proxy": f"http://user:{SECRET}@proxy.corp:3128"}, environ={}
    )
    proxy = settings.proxy.https
    assert proxy is not None
    assert (str(proxy), repr(proxy)) == (
        "http://proxy.corp:3128",
        "Proxy('http://proxy.corp:3128')",
    )
    for text in (repr(settings), str(settings), repr(settings.proxy)):
        assert SECRET not in text
        assert "user" not in text
    assert SECRET in settings.proxy.secrets()  # what the log filter is given to blank out


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        (f"http://user:{SECRET}@proxy.corp:3128", "http://***@proxy.corp:3128"),
        (f"user:{SECRET}@proxy.corp:3128", "***@proxy.corp:3128"),
        (f"socks5://u:{SECRET}://x@h:1", "socks5://***@h:1"),
        ("http://proxy.corp:3128", "http://proxy.corp:3128"),
    ],
)
def test_shown_masks_whatever_precedes_the_host(raw: str, masked: str) -> None:
    """A proxy URL quoted in an error loses its userinfo, whatever characters it holds."""
    assert shown(raw) == masked


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypassed"),
    [
        ("example.com", "example.com", 443, True),
        ("example.com", "api.example.com", 443, True),
        (".example.com", "example.com", 443, True),  # curl: a leading dot is ignored
        (".example.com", "a.b.example.com", 443, True),
        ("*.example.com", "api.example.com", 443, True),
        ("example.com", "wwwexample.com", 443, False),  # a domain, not a suffix of letters
        ("example.com", "example.com.evil", 443, False),
        ("EXAMPLE.com", "Example.COM", 80, True),
        ("*", "anything.at.all", 1, True),
        ("a.test, *", "b.test", 1, True),
        ("127.0.0.1", "127.0.0.1", 8080, True),
        ("127.0.0.1", "localhost", 8080, False),  # names are never resolved to match
        ("localhost", "127.0.0.1", 8080, False),
        ("", "localhost", 80, False),  # nothing is bypassed unless listed
        ("10.0.0.0/8", "10.20.30.40", 443, True),
        ("10.0.0.0/8", "11.0.0.1", 443, False),
        ("::1", "::1", 443, True),
        ("fd00::/8", "fd12::5", 443, True),
        ("fd00::/8", "10.0.0.1", 443, False),
        ("api.test:8443", "api.test", 8443, True),
        ("api.test:8443", "api.test", 443, False),
        ("127.0.0.1:9000", "127.0.0.1", 9000, True),
        ("127.0.0.1:9000", "127.0.0.1", 9001, False),
        ("[::1]:9000", "::1", 9000, True),
        ("[::1]:9000", "::1", 9001, False),
        ("api.test:notaport, other.test", "api.test", 443, False),
        ("10.0.0.0/99", "10.0.0.1", 443, False),  # not a network: matches nothing
    ],
)
def test_no_proxy_matches_like_curl(no_proxy: str, host: str, port: int, bypassed: bool) -> None:
    """Names match themselves and their subdomains, addresses and CIDR networks match literal
    addresses, ports restrict an entry, ``*`` matches all; junk matches nothing."""
    assert parse_no_proxy(no_proxy).bypasses(host, port) is bypassed


def test_lower_case_variables_win_and_an_empty_one_unsets_the_upper_case_one() -> None:
    """As urllib's getproxies (what httpx reads): https_proxy over HTTPS_PROXY; an empty
    https_proxy means none even with HTTPS_PROXY set."""
    environ = {"HTTPS_PROXY": "http://upper:3128", "https_proxy": "http://lower:3128"}
    assert str(resolve_proxies(None, environ).https) == "http://lower:3128"
    assert resolve_proxies(None, {**environ, "https_proxy": ""}).https is None
    assert str(resolve_proxies(None, {"HTTPS_PROXY": "upper:1"}).https) == "http://upper:1"
    unset = {"NO_PROXY": "*", "no_proxy": "", "HTTP_PROXY": "http://p:1"}
    assert resolve_proxies(None, unset).proxy_for("http", "h", 80) is not None


def test_each_scheme_takes_its_own_variable_and_all_proxy_fills_in() -> None:
    """http_proxy serves http only, https_proxy https only; ALL_PROXY stands in for either
    one that is unset."""
    proxies = resolve_proxies(None, {"HTTP_PROXY": "http://plain:1"})
    assert (str(proxies.http), proxies.https) == ("http://plain:1", None)
    proxies = resolve_proxies(None, {"HTTPS_PROXY": "http://secure:2", "ALL_PROXY": "every:3"})
    assert (str(proxies.http), str(proxies.https)) == ("http://every:3", "http://secure:2")
    assert resolve_proxies(None, {}) == DIRECT
    assert not resolve_proxies(None, {"NO_PROXY": "example.com"})


def test_upper_case_http_proxy_is_ignored_in_a_cgi_script() -> None:
    """With REQUEST_METHOD set, HTTP_PROXY may come from a client's Proxy: header: ignored, as
    urllib does; http_proxy still counts."""
    cgi = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://attacker:1"}
    assert resolve_proxies(None, cgi).http is None
    assert str(resolve_proxies(None, {**cgi, "http_proxy": "http://ok:2"}).http) == "http://ok:2"


def test_tracker_proxy_wins_over_the_environment_and_no_proxy_still_applies() -> None:
    """--proxy over TRACKER_PROXY over HTTPS_PROXY/HTTP_PROXY/ALL_PROXY; NO_PROXY applies to
    whichever proxy is chosen, as curl's does to -x."""
    environ = {
        "HTTPS_PROXY": "http://env:1",
        "ALL_PROXY": "http://all:2",
        "NO_PROXY": "internal.test",
        "TRACKER_PROXY": "http://tracker:3",
    }
    settings = load_settings(PROXY_FIELDS, {}, environ=environ)
    assert str(settings.proxy.proxy_for("https", "api.test", 443)) == "http://tracker:3"
    assert str(settings.proxy.proxy_for("http", "api.test", 80)) == "http://tracker:3"
    assert settings.proxy.proxy_for("https", "svc.internal.test", 443) is None
    flagged = load_settings(PROXY_FIELDS, {"proxy": "http://flag:4"}, environ=environ)
    assert str(flagged.proxy.proxy_for("https", "api.test", 443)) == "http://flag:4"
    without = load_settings(
        PROXY_FIELDS, {}, environ={k: v for k, v in environ.items() if "TRACKER" not in k}
    )
    assert str(without.proxy.proxy_for("https", "api.test", 443)) == "http://env:1"
    assert str(without.proxy.proxy_for("http", "api.test", 80)) == "http://all:2"


@pytest.mark.parametrize("choice", ["none", "NONE", ""])
def test_proxy_none_turns_off_every_proxy_the_environment_names(choice: str) -> None:
    """``--proxy none`` (or an empty --proxy) sends everything direct; it also spares a
    proxy variable tracker could not use."""
    environ = {"HTTPS_PROXY": "http://env:1", "ALL_PROXY": "socks5://sock:1080"}
    settings = load_settings(PROXY_FIELDS, {"proxy": choice}, environ=environ)
    assert not settings.proxy
    assert settings.proxy.proxy_for("https", "api.test", 443) is None
    assert parse_proxy_choice(choice) == DIRECT


def test_an_empty_tracker_proxy_counts_as_unset() -> None:
    """TRACKER_PROXY= in a unit file is unset, as for every TRACKER_* variable: the
    environment's proxy applies."""
    settings = load_settings(
        PROXY_FIELDS, {}, environ={"TRACKER_PROXY": "", "HTTPS_PROXY": "http://env:1"}
    )
    assert str(settings.proxy.https) == "http://env:1"


@pytest.mark.parametrize(
    ("flags", "environ", "named"),
    [
        ({"proxy": f"socks5://user:{SECRET}@h:1080"}, {}, "--proxy 'socks5://***@h:1080'"),
        ({}, {"TRACKER_PROXY": f"https://user:{SECRET}@h"}, "TRACKER_PROXY 'https://***@h'"),
    ],
)
def test_an_unusable_proxy_setting_is_a_config_error_naming_it_without_its_password(
    flags: dict[str, str], environ: dict[str, str], named: str
) -> None:
    """--proxy and TRACKER_PROXY are checked with the other settings: the error names the
    flag or variable and the proxy with its userinfo masked."""
    with pytest.raises(ConfigError) as caught:
        load_settings(PROXY_FIELDS, flags, environ=environ)
    message = str(caught.value)
    assert message.startswith(named)
    assert SECRET not in message
    assert "user" not in message


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"ALL_PROXY": f"socks5h://user:{SECRET}@h:1"}, "ALL_PROXY 'socks5h://***@h:1'"),
        ({"https_proxy": f"http://user:{SECRET}@h:x"}, "https_proxy 'http://***@h:x'"),
    ],
)
def test_an_unusable_proxy_variable_stops_only_what_would_use_it(
    environ: dict[str, str], named: str
) -> None:
    """A shell's proxy variable tracker cannot use leaves the settings loadable (commands
    that make no request work); using the proxies raises ConfigError naming the variable
    without its password, and neither transport goes direct instead."""
    from tracker.http.proxy_router import ProxyRouter
    from tracker.http.transport import HTTP1Transport

    proxies = load_settings(PROXY_FIELDS, {}, environ=environ).proxy
    assert proxies  # not "no proxy": something was asked for
    for use in (
        proxies.require,
        lambda: HTTP1Transport(max_connections=1, max_body=1, proxies=proxies),
        lambda: ProxyRouter(proxies),
    ):
        with pytest.raises(ConfigError) as caught:
            use()
        message = str(caught.value)
        assert message.startswith(named) and "TRACKER_PROXY=none" in message
        assert SECRET not in message and "user" not in message
    assert not load_settings(PROXY_FIELDS, {"proxy": "none"}, environ=environ).proxy


def test_the_help_says_where_the_default_comes_from() -> None:
    """--proxy's help names the variables it falls back on, not a meaningless 'none'."""
    assert "default: from HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY" in (
        OPTIONS["proxy"].describe()
    )


def test_the_same_proxy_with_other_credentials_is_another_proxy() -> None:
    """Connections are pooled per proxy: a pool must not mix two identities."""
    assert parse_proxy_url("http://a:1@p:1") != parse_proxy_url("http://a:2@p:1")
    assert parse_proxy_url("http://a:1@p:1") == Proxy("p", 1, basic("a:1"), "1")
