"""Proxies (docs/proxies.md): which proxy, if any, a request to a URL goes through.

One choice for all of tracker's HTTP: the polls' transport and the stock httpx clients of
downloads and notifications all ask ``Proxies.proxy_for``. The environment arrives here as a
mapping from the settings module, the one place that reads it.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

from tracker.errors import ConfigError

# The variables, as urllib's getproxies() (which httpx reads) names them: in lower or upper
# case, the lower-case one winning.
HTTP_VARIABLE, HTTPS_VARIABLE, ALL_VARIABLE, NO_PROXY_VARIABLE = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)
PROXY_VARIABLES = (HTTP_VARIABLE, HTTPS_VARIABLE, ALL_VARIABLE, NO_PROXY_VARIABLE)
# The value of --proxy or TRACKER_PROXY that turns every proxy off, the environment's too.
NO_PROXY_WORD = "none"
DEFAULT_PORTS = {"http": 80, "https": 443}

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*", re.IGNORECASE)
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Proxy:
    """An http:// proxy. Shown as ``http://host:port`` only: never with its credentials."""

    host: str
    port: int
    #: The Proxy-Authorization header's value (Basic), from the URL's user and password.
    authorization: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        return f"Proxy('{self}')"


@dataclass(frozen=True)
class NoProxy:
    """The hosts that go direct whatever the proxy (NO_PROXY): host names matching themselves
    and their subdomains, IP addresses and networks matching literal addresses only, each with
    an optional port."""

    everything: bool = False
    names: tuple[tuple[str, int | None], ...] = ()
    networks: tuple[tuple[_Network, int | None], ...] = ()

    def bypasses(self, host: str, port: int) -> bool:
        if self.everything:
            return True
        host = host.lower().rstrip(".")
        for name, only in self.names:
            if (only is None or only == port) and (host == name or host.endswith("." + name)):
                return True
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False  # a name: never resolved to match an address, as curl and httpx do
        return any((only is None or only == port) and address in net for net, only in self.networks)


@dataclass(frozen=True)
class Proxies:
    """The proxy for each scheme's requests (None: direct), and the hosts that go direct.
    False when every request goes direct.

    ``unusable`` says why a proxy variable of the environment cannot be used; ``require``
    raises it where HTTP starts, so a shell's ALL_PROXY=socks5://… stops the commands that
    would have used it, not `tracker list`."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: NoProxy = NoProxy()
    unusable: str | None = None

    def __bool__(self) -> bool:
        return self.http is not None or self.https is not None or self.unusable is not None

    def require(self) -> Proxies:
        """These proxies, unless one of them cannot be used (ConfigError)."""
        if self.unusable is not None:
            raise ConfigError(self.unusable)
        return self

    def proxy_for(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy a request to ``scheme://host:port`` goes through, or None for direct."""
        proxy = self.https if scheme == "https" else self.http if scheme == "http" else None
        if proxy is None or self.no_proxy.bypasses(host, port):
            return None
        return proxy

    def secrets(self) -> list[str]:
        """What of the proxies' credentials must never reach a log line."""
        proxies = {proxy for proxy in (self.http, self.https) if proxy is not None}
        return [
            secret
            for proxy in proxies
            for secret in (proxy.password, proxy.authorization)
            if secret
        ]


# Every request direct.
DIRECT = Proxies()


def parse_proxy_url(raw: str) -> Proxy:
    """An http:// proxy URL (``http://`` is assumed when the scheme is left out, as curl and
    httpx do); its user and password, percent-decoded, become a Basic Proxy-Authorization."""
    text = raw.strip()
    if any(char.isspace() or not char.isprintable() for char in text):
        raise ValueError("contains spaces or control characters")
    parts = urlsplit(text if "://" in text else f"http://{text}")
    scheme = parts.scheme.lower()
    if scheme.startswith("socks"):
        raise ValueError("SOCKS proxies are not supported: use an http:// proxy")
    if scheme == "https":
        raise ValueError(
            "https:// proxies (TLS to the proxy) are not supported: use http:// (https requests "
            "still go through it encrypted end to end, by CONNECT)"
        )
    if scheme != "http":
        raise ValueError("not an http:// proxy URL")
    if not parts.hostname:
        raise ValueError("the proxy URL has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("a proxy URL is http://[user:password@]host[:port], without a path")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    authorization = password = None
    if parts.username is not None:
        password = unquote(parts.password or "")
        credentials = f"{unquote(parts.username)}:{password}".encode()
        authorization = "Basic " + base64.b64encode(credentials).decode("ascii")
    return Proxy(parts.hostname, port or DEFAULT_PORTS["http"], authorization, password or None)


def parse_no_proxy(raw: str) -> NoProxy:
    """NO_PROXY's comma-separated entries: ``*``, host names (a leading ``.`` or ``*.`` is
    ignored), IP addresses, CIDR networks, each with an optional ``:port``. Entries that fit
    none of these match nothing, as in curl: a typo there never stops tracker."""
    names: list[tuple[str, int | None]] = []
    networks: list[tuple[_Network, int | None]] = []
    for entry in raw.lower().split(","):
        entry = entry.strip()
        if entry == "*":
            return NoProxy(everything=True)
        host, port = _split_port(entry)
        if not host:
            continue
        try:
            networks.append((ipaddress.ip_network(host, strict=False), port))
        except ValueError:
            names.append((host.lstrip("*").lstrip(".").rstrip("."), port))
    return NoProxy(names=tuple(names), networks=tuple(networks))


def parse_proxy_choice(raw: str) -> Proxies:
    """``--proxy`` or ``TRACKER_PROXY``: one proxy for http and https, or ``none``."""
    if raw.strip().lower() in ("", NO_PROXY_WORD):
        return DIRECT
    proxy = parse_proxy_url(raw)
    return Proxies(http=proxy, https=proxy)


def resolve_proxies(chosen: Proxies | None, environ: Mapping[str, str]) -> Proxies:
    """The proxies tracker uses: ``chosen`` (from --proxy or TRACKER_PROXY) when given, else
    http_proxy for http, https_proxy for https, all_proxy for either one missing; NO_PROXY
    applies to both, as curl's does. A variable that cannot be used is named in ``unusable``,
    never with its credentials."""
    found = _variable(environ, NO_PROXY_VARIABLE)
    no_proxy = parse_no_proxy(found[1]) if found else NoProxy()
    if chosen is not None:
        return replace(chosen, no_proxy=no_proxy)
    try:
        every = _proxy_variable(environ, ALL_VARIABLE)
        return Proxies(
            http=_proxy_variable(environ, HTTP_VARIABLE) or every,
            https=_proxy_variable(environ, HTTPS_VARIABLE) or every,
            no_proxy=no_proxy,
        )
    except ConfigError as exc:
        return Proxies(unusable=str(exc))


def shown(raw: str) -> str:
    """A proxy URL fit for a message: whatever stands before its last ``@`` replaced (a
    password may hold any character, ``://`` included)."""
    head, at, host = raw.strip().rpartition("@")
    if not at:
        return raw.strip()
    scheme = head.partition("://")[0] if "://" in head else ""
    return f"{scheme}://***@{host}" if _SCHEME.fullmatch(scheme) else f"***@{host}"


def _proxy_variable(environ: Mapping[str, str], name: str) -> Proxy | None:
    found = _variable(environ, name)
    if found is None:
        return None
    variable, value = found
    try:
        return parse_proxy_url(value)
    except ValueError as exc:
        raise ConfigError(
            f"{variable} {shown(value)!r}: {exc} (--proxy none or TRACKER_PROXY=none ignores it)"
        ) from None


def _variable(environ: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """The variable ``name`` as urllib reads it: lower case first, where an empty value unsets
    the upper-case one; HTTP_PROXY is ignored in a CGI script (REQUEST_METHOD set), where a
    client could have set it with a ``Proxy:`` header."""
    lower = environ.get(name)
    if lower is not None:
        return (name, lower) if lower.strip() else None
    upper = name.upper()
    if name == HTTP_VARIABLE and "REQUEST_METHOD" in environ:
        return None
    value = environ.get(upper)
    return (upper, value) if value and value.strip() else None


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host[:port]``, ``[v6]:port``, or a bare IPv6 address (two colons or more)."""
    host, port = entry, ""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    if not port:
        return host, None
    if not port.isdigit() or int(port) > 65535:
        return "", None  # not a port: the entry matches nothing
    return host, int(port)
