"""Proxies (docs/proxies.md) through real sockets: a forwarding proxy on 127.0.0.1
(tests/proxy_server.py), the simulator over HTTP and over TLS, polls, downloads and
notifications."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import trustme
import uvloop

from tests.conftest import API, make_tracker, run_until_done
from tests.doubles import NOTIFY_SECRET, Receiver
from tests.proxy_server import ForwardProxy, unused_port
from tracker.core.models import FetchResult
from tracker.core.secrets import Secret
from tracker.http.client import VideoClient
from tracker.http.proxy_router import ProxyRouter
from tracker.http.transfers import ContentClient, TransferError
from tracker.http.transport import HTTP1Transport
from tracker.settings import load_settings
from tracker.settings.proxies import Proxies
from tracker.simulator import Reply, Simulator, SimulatorServer, content_of

TOKEN = "sk-proxy-tests-0001"
USER, SECRET = "tracker", "pr0xy-pa55word"
T = TypeVar("T")
DONE = Reply(video={"status": "completed", "progress": 100})
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}

PROXY_FIELDS = ("proxy", "log_format")


def proxies(url: str, no_proxy: str = "") -> Proxies:
    """What --proxy URL resolves to, with NO_PROXY as given."""
    return load_settings(PROXY_FIELDS, {"proxy": url}, environ={"NO_PROXY": no_proxy}).proxy


def with_credentials(proxy_url: str, user: str = USER, password: str = SECRET) -> str:
    return proxy_url.replace("http://", f"http://{user}:{password}@")


def refusal(proxy: ForwardProxy) -> str:
    """The error of a 407 from ``proxy``, as stored and shown."""
    return f"ProxyError: the proxy {proxy.url} refused (407 Proxy Authentication Required)"


def run(main: Callable[[], Awaitable[T]], loop: str = "uvloop") -> T:
    async def go() -> T:
        return await main()

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(go())


def poll(
    api_base: str,
    video: str,
    chosen: Proxies,
    *,
    tls: ssl.SSLContext | None = None,
    times: int = 1,
    loop: str = "uvloop",
) -> list[FetchResult]:
    """``times`` polls of ``video`` in a row with tracker's client, through ``chosen``."""

    async def go() -> list[FetchResult]:
        transport = HTTP1Transport(max_connections=4, max_body=1 << 20, tls=tls, proxies=chosen)
        async with VideoClient(api_base, Secret(TOKEN), timeout=5, transport=transport) as client:
            return [await client.fetch(video) for _ in range(times)]

    return run(go, loop)


@dataclass
class TLSAPI:
    simulator: Simulator
    url: str  # https://localhost:PORT: the name the certificate must carry
    trusted: ssl.SSLContext  # a client context that trusts the simulator's authority


def serve_tls(certificate_for: str) -> Iterator[TLSAPI]:
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(certificate_for).configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    simulator = Simulator(token=TOKEN)
    with SimulatorServer(simulator, tls=server) as url:
        yield TLSAPI(simulator, url.replace("127.0.0.1", "localhost"), client)


@pytest.fixture
def tls_api() -> Iterator[TLSAPI]:
    """The simulator over TLS, its certificate for the name ``localhost`` only."""
    yield from serve_tls("localhost")


@pytest.fixture
def plain_api() -> Iterator[API]:
    simulator = Simulator(token=TOKEN)
    with SimulatorServer(simulator) as url:
        yield API(simulator, url, TOKEN)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    server = ForwardProxy()
    with server:
        yield server


@pytest.fixture
def guarded() -> Iterator[ForwardProxy]:
    """A proxy that answers 407 to any request without USER:SECRET."""
    server = ForwardProxy(USER, SECRET)
    with server:
        yield server


def test_http_polls_reach_the_proxy_in_absolute_form_on_one_kept_alive_connection(
    plain_api: API, proxy: ForwardProxy
) -> None:
    """An http API through the proxy: each GET names the whole URL; the second poll reuses
    the connection to the proxy."""
    video = plain_api.simulator.add_video("video_http_proxy", steps=5)
    results = poll(plain_api.url, video, proxies(proxy.url), times=2)
    assert [r.http_status for r in results] == [200, 200]
    assert proxy.forwarded == [("GET", f"{plain_api.url}/v1/videos/{video}")] * 2
    assert proxy.connections == 1
    assert plain_api.simulator.polls(video) == 2


@pytest.mark.parametrize("loop", LOOPS)
def test_https_polls_tunnel_through_connect_verified_against_the_api_name(
    tls_api: TLSAPI, proxy: ForwardProxy, loop: str
) -> None:
    """An https API through the proxy: one CONNECT to the API's host and port, TLS inside it
    checked against the name ``localhost``, the tunnel kept for the next poll; the proxy sees
    no request."""
    video = tls_api.simulator.add_video("video_tunnel", steps=5)
    results = poll(tls_api.url, video, proxies(proxy.url), tls=tls_api.trusted, times=2, loop=loop)
    assert [(r.http_status, r.error) for r in results] == [(200, None), (200, None)]
    assert proxy.tunnels == [tls_api.url.removeprefix("https://")]
    assert (proxy.forwarded, proxy.connections) == ([], 1)


def test_a_certificate_for_another_name_is_refused_through_the_tunnel(
    proxy: ForwardProxy,
) -> None:
    """A certificate for 127.0.0.1 (where both the proxy and the API listen) does not do for
    the API's name ``localhost``: the poll fails before any request reaches the API."""
    for api in serve_tls("127.0.0.1"):
        video = api.simulator.add_video("video_wrong_name", steps=1)
        [result] = poll(api.url, video, proxies(proxy.url), tls=api.trusted)
        assert result.http_status is None and result.error is not None
        assert result.error["type"] == "connection_error"
        assert "CERTIFICATE_VERIFY_FAILED" in result.error["message"]
        assert f"through the proxy {proxy.url}" in result.error["message"]
        assert api.simulator.polls(video) == 0
        assert len(proxy.tunnels) == 1


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_proxy_wanting_credentials_gets_them_from_the_url(
    scheme: str, plain_api: API, tls_api: TLSAPI, guarded: ForwardProxy
) -> None:
    """user:password in the proxy URL become Proxy-Authorization on CONNECT and on
    absolute-form requests alike."""
    base, simulator = (plain_api.url, plain_api.simulator)
    if scheme == "https":
        base, simulator = (tls_api.url, tls_api.simulator)
    video = simulator.add_video(f"video_auth_{scheme}", steps=5)
    [result] = poll(base, video, proxies(with_credentials(guarded.url)), tls=tls_api.trusted)
    assert (result.http_status, result.error, guarded.refused) == (200, None, 0)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_wrong_credentials_are_an_error_saying_the_proxy_refused(
    scheme: str, plain_api: API, tls_api: TLSAPI, guarded: ForwardProxy
) -> None:
    """A 407, to CONNECT or to a forwarded request, is a connection error naming the proxy by
    host and port, with neither the user nor the password."""
    base, simulator = (plain_api.url, plain_api.simulator)
    if scheme == "https":
        base, simulator = (tls_api.url, tls_api.simulator)
    video = simulator.add_video(f"video_refused_{scheme}", steps=5)
    chosen = proxies(with_credentials(guarded.url, password="wrong-" + SECRET))
    [result] = poll(base, video, chosen, tls=tls_api.trusted)
    assert result.error == {"type": "connection_error", "message": refusal(guarded)}
    assert (guarded.refused, simulator.polls(video)) == (1, 0)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_proxy_that_is_down_is_an_error_naming_it(
    scheme: str, plain_api: API, tls_api: TLSAPI
) -> None:
    """Nothing listening where the proxy should be: a connection error naming the proxy,
    never a direct request instead."""
    base, simulator = (plain_api.url, plain_api.simulator)
    if scheme == "https":
        base, simulator = (tls_api.url, tls_api.simulator)
    video = simulator.add_video(f"video_down_{scheme}", steps=5)
    down = f"http://127.0.0.1:{unused_port()}"
    [result] = poll(base, video, proxies(with_credentials(down)), tls=tls_api.trusted)
    assert result.error is not None and result.error["type"] == "connection_error"
    assert result.error["message"].startswith(f"ConnectError: cannot connect to the proxy {down}: ")
    assert USER not in result.error["message"]
    assert simulator.polls(video) == 0


def test_hosts_in_no_proxy_are_reached_direct(
    plain_api: API, tls_api: TLSAPI, proxy: ForwardProxy
) -> None:
    """A NO_PROXY address:port entry and a domain entry (``.localhost``, covering
    ``localhost`` itself) send those polls past the proxy, https ones without a CONNECT."""
    video = plain_api.simulator.add_video("video_direct", steps=5)
    port = plain_api.url.rsplit(":", 1)[1]
    [result] = poll(plain_api.url, video, proxies(proxy.url, f"example.com, 127.0.0.1:{port}"))
    assert result.http_status == 200
    secure = tls_api.simulator.add_video("video_direct_tls", steps=5)
    [result] = poll(tls_api.url, secure, proxies(proxy.url, ".localhost"), tls=tls_api.trusted)
    assert result.http_status == 200
    assert proxy.connections == 0


def test_the_proxy_password_reaches_no_log_line_and_no_stored_error(
    plain_api: API, guarded: ForwardProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxy that refuses and one that is down become error snapshots saying so; neither
    they, the tables nor any log line (libraries' debug output included) hold the password."""
    caplog.set_level(logging.DEBUG)
    down = f"http://127.0.0.1:{unused_port()}"
    cases = {
        "refused": (with_credentials(guarded.url, password=SECRET + "-wrong"), guarded.url),
        "down": (with_credentials(down), down),
    }
    messages, rows = {}, []
    for case, (proxy_url, _) in cases.items():
        video = plain_api.simulator.add_video(f"video_log_{case}", steps=5)
        database = f"sqlite:///{tmp_path / case}.db"  # each case polls its own task only
        with make_tracker(plain_api, database, proxy=proxies(proxy_url)) as tracker:
            tracker.add([video])
            tracker.poll_once()
            [snapshot] = tracker.history(video)
            rows += [repr(row) for table in ("tasks", "snapshots") for row in tracker.export(table)]
        assert snapshot.error is not None and plain_api.simulator.polls(video) == 0
        messages[case] = snapshot.error["message"]
    assert messages["refused"] == refusal(guarded)
    assert messages["down"].startswith(f"ConnectError: cannot connect to the proxy {down}: ")
    assert caplog.text.count("poll failed") == 2
    for text in (caplog.text, *messages.values(), *rows):
        assert SECRET not in text
        assert f"{USER}:" not in text


def test_downloads_and_notifications_go_through_the_proxy(
    api: API, guarded: ForwardProxy, sqlite_url: str, tmp_path: Path
) -> None:
    """The daemon's polls, its download and its signed notification all reach their hosts
    through the proxy, with its credentials."""
    receiver = Receiver()
    try:
        video = api.simulator.add_video("video_proxied_follow_ups", steps=1)
        with make_tracker(
            api,
            sqlite_url,
            proxy=proxies(with_credentials(guarded.url)),
            download_dir=str(tmp_path / "videos"),
            notify_url=receiver.url,
            notify_secret=Secret(NOTIFY_SECRET),
        ) as tracker:
            tracker.add([video])
            run_until_done(tracker)
            [download] = tracker.database.follow_ups.downloads(video)
    finally:
        receiver.close()
    assert Path(download.path or "").read_bytes() == content_of(video, "video")
    assert [event["task_id"] for _, event in receiver.deliveries()] == [video]
    assert ("GET", f"{api.url}/v1/videos/{video}") in guarded.forwarded
    assert ("GET", f"{api.url}/v1/videos/{video}/content?variant=video") in guarded.forwarded
    assert ("POST", receiver.url) in guarded.forwarded
    assert guarded.refused == 0


def test_no_proxy_with_a_port_sends_only_that_service_direct(
    api: API, proxy: ForwardProxy, sqlite_url: str, tmp_path: Path
) -> None:
    """NO_PROXY=127.0.0.1:<receiver's port>: the notification goes direct while the polls and
    the download, on another port of the same address, take the proxy."""
    receiver = Receiver()
    try:
        video = api.simulator.add_video("video_partly_proxied", steps=1)
        port = receiver.url.split(":")[2].split("/")[0]
        with make_tracker(
            api,
            sqlite_url,
            proxy=proxies(proxy.url, f"127.0.0.1:{port}"),
            download_dir=str(tmp_path / "videos"),
            notify_url=receiver.url,
            notify_secret=Secret(NOTIFY_SECRET),
        ) as tracker:
            tracker.add([video])
            run_until_done(tracker)
    finally:
        receiver.close()
    assert len(receiver.deliveries()) == 1
    methods = {method for method, _ in proxy.forwarded}
    assert methods == {"GET"}
    assert ("GET", f"{api.url}/v1/videos/{video}/content?variant=video") in proxy.forwarded


def download(api_base: str, video: str, router: ProxyRouter) -> tuple[bytes, str | None]:
    """The video's bytes through a ContentClient on ``router``, and the error if it failed."""
    received = bytearray()

    async def go() -> tuple[bytes, str | None]:
        client = ContentClient(api_base, Secret(TOKEN), timeout=5, transport=router)
        try:
            await client.download(video, "video", received.extend)
        except TransferError as exc:
            return bytes(received), str(exc)
        finally:
            await client.aclose()
        return bytes(received), None

    return run(go)


def test_https_downloads_tunnel_through_the_proxy_and_its_refusals_are_named(
    tls_api: TLSAPI, guarded: ForwardProxy
) -> None:
    """A download over https takes a CONNECT tunnel verified against the API's name; a 407
    and a proxy that is down fail with the proxy named and no credential."""
    video = tls_api.simulator.script("video_tunnel_download", [DONE])
    poll(tls_api.url, video, Proxies(), tls=tls_api.trusted)  # completed: it has content now
    trusted = tls_api.trusted
    good = ProxyRouter(proxies(with_credentials(guarded.url)), tls=trusted)
    assert download(tls_api.url, video, good) == (content_of(video, "video"), None)
    assert guarded.tunnels == [tls_api.url.removeprefix("https://")]
    wrong = ProxyRouter(proxies(with_credentials(guarded.url, password="x" + SECRET)), tls=trusted)
    _, error = download(tls_api.url, video, wrong)
    assert error == refusal(guarded)
    down = f"http://127.0.0.1:{unused_port()}"
    _, error = download(tls_api.url, video, ProxyRouter(proxies(with_credentials(down))))
    assert error is not None and error.startswith(
        f"ConnectError: cannot connect through the proxy {down}: "
    )
    assert SECRET not in error
