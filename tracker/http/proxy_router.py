"""Proxies for the stock httpx clients of downloads and notifications (docs/proxies.md).

They stream large bodies, which the polls' transport does not, so they keep httpx's own
transport; ``ProxyRouter`` puts one in front per route, choosing as the polls' transport does.
"""

from __future__ import annotations

import ssl

import httpx

from tracker.http.connection import AUTHENTICATION_REQUIRED, proxy_refused
from tracker.settings.proxies import DEFAULT_PORTS, Proxies, Proxy


class ProxyRouter(httpx.AsyncBaseTransport):
    """For stock httpx clients (downloads, notifications): each request, redirect hops
    included, goes direct or through the proxy ``proxies`` chooses for its URL, as the polls'
    transport chooses."""

    def __init__(self, proxies: Proxies, *, tls: ssl.SSLContext | None = None) -> None:
        self._proxies = proxies.require()
        self._verify: ssl.SSLContext | bool = tls or True  # default: certifi's authorities
        self._direct = httpx.AsyncHTTPTransport(verify=self._verify, trust_env=False)
        self._through: dict[Proxy, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or DEFAULT_PORTS.get(url.scheme, 0)
        proxy = self._proxies.proxy_for(url.scheme, url.host, port)
        if proxy is None:
            return await self._direct.handle_async_request(request)
        transport = self._through.get(proxy)
        if transport is None:
            headers = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else {}
            transport = self._through[proxy] = httpx.AsyncHTTPTransport(
                verify=self._verify,
                trust_env=False,
                proxy=httpx.Proxy(str(proxy), headers=headers),
            )
        try:
            response = await transport.handle_async_request(request)
        except httpx.ProxyError as exc:  # httpcore's says the CONNECT answer: "407 Proxy …"
            raise proxy_refused(proxy, str(exc), request) from exc
        except httpx.ConnectError as exc:
            raise httpx.ConnectError(
                f"cannot connect through the proxy {proxy}: {exc}", request=request
            ) from exc
        if response.status_code == AUTHENTICATION_REQUIRED:
            await response.aclose()
            raise proxy_refused(proxy, "407 Proxy Authentication Required", request)
        return response

    async def aclose(self) -> None:
        for transport in (self._direct, *self._through.values()):
            await transport.aclose()


def proxy_router(proxies: Proxies) -> ProxyRouter | None:
    """The transport of a stock httpx client honouring ``proxies``; None (httpx's own) when
    there is no proxy."""
    return ProxyRouter(proxies) if proxies else None
