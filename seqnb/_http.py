"""The one HTTP engine: aiohttp, and httpx's interface over it (the ``httpx-aiohttp`` transport).

Every request seqnb makes goes through aiohttp's connection pool. API calls, a sweep's hot path,
use the pool directly (``session``, through ``seqnb.api.transport``); everything else (image
downloads and their redirects, the check of which server a base URL is, uploads) uses
``AsyncClient``: httpx's client over the same pool, so callers see httpx's requests, responses
and exceptions. The library does HTTP/1.1, keep-alive, TLS verification, chunked and compressed
answers, and proxies; seqnb adds only:

- aiohttp's failures as the httpx exception that says what happened (``http_error``), the way
  httpx's own transport says it: ``httpx.ConnectError``/``ConnectTimeout`` only while no
  connection was made (so nothing of the request left), anything later a read or protocol error
  (httpx-aiohttp's own map reports a dropped connection as a ``ConnectTimeout``);
- an idle pooled connection the server has sent anything on is closed, never reused (aiohttp
  would read those bytes as the answer to the next request);
- the environment's proxy read as httpx reads it (``HTTP(S)_PROXY``, ``ALL_PROXY``,
  ``NO_PROXY``: ``proxy_for``), and one the engine cannot use (a ``socks5://`` one: aiohttp
  speaks http and https proxies) refused as ``ProxyUnusable``, a ``SettingInvalid`` naming the
  variable, before anything leaves;
- one verifying TLS context per setting (``SSL_CERT_FILE``/``SSL_CERT_DIR``: ``tls_context``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import ssl
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver
from httpx_aiohttp import AiohttpTransport

from .errors import SettingInvalid, Unsendable

__all__ = ["AioTransport", "AsyncClient", "ProxyUnusable", "http_error", "proxy_for", "session", "tls_context"]

PROXY_VARIABLES = ("ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")
USABLE_PROXY_SCHEMES = ("http", "https")
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's own default


def tls_context(trust_env: bool = True) -> ssl.SSLContext:
    """A verifying TLS context (``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` honoured when ``trust_env``), made once per setting.

    Making one reads the CA bundle (25 ms of CPU): every client with the same setting shares it.
    """
    where = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if trust_env else (None, None)
    return _tls_context(trust_env, *where)


@functools.cache
def _tls_context(trust_env: bool, cafile: str | None, capath: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=trust_env)


class ProxyUnusable(SettingInvalid, Unsendable):
    """The environment names a proxy the engine cannot use; the request was not sent (nothing left)."""


def _shown(url: httpx.URL) -> str:
    """A proxy URL without its user and password."""
    return str(url.copy_with(username=None, password=None))


def _variable(url: httpx.URL) -> str:
    for name in PROXY_VARIABLES:
        value = os.environ.get(name)
        if value:
            try:
                named = httpx.URL(value if "://" in value else "http://" + value)
            except httpx.InvalidURL:
                continue
            same = named.copy_with(username=None, password=None) == url.copy_with(username=None, password=None)
            if same:
                return name
    return "a proxy variable"


def _proxy_problem(proxy: httpx.URL) -> ProxyUnusable | None:
    """Why the engine cannot send through ``proxy``, as the error to raise; None when it can."""
    if proxy.scheme in USABLE_PROXY_SCHEMES:
        return None
    name = _variable(proxy)
    return ProxyUnusable(
        f"{name}={_shown(proxy)} names a {proxy.scheme} proxy, and seqnb's HTTP engine (aiohttp) sends through "
        f"http:// and https:// proxies only: set {name} to an http(s) proxy, unset it, or name the API's host in "
        "NO_PROXY; nothing was sent"
    )


def http_error(exc: BaseException, url: httpx.URL) -> httpx.HTTPError | None:
    """The httpx exception that says what an aiohttp failure of a request to ``url`` means; None if not aiohttp's."""
    where = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return httpx.ConnectError(f"the TLS certificate of {where} is not trusted ({exc.certificate_error})")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return httpx.ConnectError(f"cannot resolve {url.host!r} ({exc.os_error.strerror or exc.os_error})")
    if isinstance(exc, aiohttp.ClientConnectorError):  # no connection was made (refused, unreachable, TLS, proxy)
        return httpx.ConnectError(f"cannot connect to {where} ({_why(exc.os_error)})")
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # raised around making the connection only
        return httpx.ConnectTimeout(f"no connection to {where} in time")
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(f"{where} stopped answering")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(f"{where} closed the connection without a complete answer")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(f"the proxy refused the connection to {where} (HTTP {exc.status})")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return httpx.RemoteProtocolError(f"{where} broke off its answer ({_first_line(exc)})")
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(f"{where} answered something that is not HTTP/1.1 ({_first_line(exc)})")
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(f"{url} is not a URL this client sends to")
    if isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionError):  # after the connection was made
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else _first_line(exc)
        return httpx.ReadError(f"the connection to {where} failed ({why})")
    if isinstance(exc, aiohttp.ClientError):
        return httpx.RemoteProtocolError(f"{where}: {type(exc).__name__}")
    return None


def _why(error: OSError) -> str:
    """``connection refused``, ``network is unreachable``: the system's words for an errno, else the error's."""
    if error.errno and error.errno > 0:
        return os.strerror(error.errno).lower()
    return str(error.strerror or error)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc)
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _reraise(exc: Exception, request: httpx.Request) -> None:
    """Raise the httpx error an aiohttp failure (raw, or as httpx-aiohttp wrapped it) stands for; return if none."""
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) else exc
    mapped = http_error(cause, request.url) if cause is not None else None
    if mapped is not None:
        mapped.request = request
        raise mapped from cause


class _Stream(httpx.AsyncByteStream):
    """An answer's body, its failures mapped like the request's."""

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._inner = inner
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except Exception as exc:
            _reraise(exc, self._request)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Connector(aiohttp.TCPConnector):
    """aiohttp's pool, which never hands out an idle connection the server has sent anything on.

    A server that sends bytes unasked (a 408 before it closes, the rest of a smuggled answer)
    means to close; aiohttp would read them as the answer to the next request sent on it.
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.home = asyncio.get_running_loop()
        _open.add(self)

    async def _get(self, key: Any, traces: list[Any]) -> aiohttp.connector.Connection | None:
        while (connection := await super()._get(key, traces)) is not None:
            protocol = connection.protocol
            if protocol is not None and not protocol.should_close:
                return connection
            connection.close()
        return None


_open: weakref.WeakSet[_Connector] = weakref.WeakSet()


@atexit.register
def _close_left_open() -> None:
    """At exit, the pools of clients never closed are shut quietly.

    A script that ends without ``client.close()`` would otherwise end on aiohttp's "Unclosed client
    session" lines. A pool is shut on its own loop when that loop still runs (the portal thread
    of ``seqnb._loop``), else at once: ``_close`` is what ``close()`` does before it waits.
    """
    for connector in list(_open):
        if connector.closed or connector.home.is_closed():
            continue
        shut = threading.Event()

        def close(connector: _Connector = connector, shut: threading.Event = shut) -> None:
            with contextlib.suppress(Exception):
                connector._close()
            shut.set()

        if not connector.home.is_running():
            close()
            continue
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            connector.home.call_soon_threadsafe(close)
            shut.wait(1.0)


def session(
    *,
    limit: int = 100,
    keepalive: float | None = 4.0,
    ssl_context: ssl.SSLContext | None = None,
    resolver: AbstractResolver | None = None,
) -> aiohttp.ClientSession:
    """An aiohttp session on the running loop: at most ``limit`` connections, idle ones kept ``keepalive`` seconds
    (never one the server has sent anything on), TLS verified with ``ssl_context`` (``tls_context()`` by default),
    no cookies, no proxy but the one a request names.
    """
    connector = _Connector(
        limit=limit, keepalive_timeout=keepalive, ssl=ssl_context or tls_context(), resolver=resolver
    )
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


def proxy_for(url: str) -> httpx.Proxy | None:
    """The proxy the environment names for ``url``, read as httpx reads it (``HTTP(S)_PROXY``, ``ALL_PROXY``,
    ``NO_PROXY``); ``ProxyUnusable`` (a ``SettingInvalid``) for one the engine cannot use.
    """
    probe = AsyncClient()  # reads the environment; connects nowhere, holds nothing to close
    transport = probe._transport_for_url(httpx.URL(url))
    if isinstance(transport, _Refused):
        raise ProxyUnusable(str(transport.error))
    return transport.proxy if isinstance(transport, AioTransport) else None


class AioTransport(AiohttpTransport):
    """httpx-aiohttp's transport, with aiohttp's failures mapped as httpx's own transport maps httpcore's.

    ``resolver``: a factory of the aiohttp resolver its connections use (image downloads check
    every address with it). Cookies are httpx's business only: aiohttp keeps none.
    """

    def __init__(self, *, resolver: Callable[[], AbstractResolver] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._resolver = resolver

    def get_client(self) -> aiohttp.ClientSession:
        return session(
            limit=self.limits.max_connections or 0,
            keepalive=self.limits.keepalive_expiry,
            ssl_context=self.ssl_context,
            resolver=self._resolver() if self._resolver is not None else None,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except Exception as exc:
            _reraise(exc, request)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Stream(response.stream, request)
        return response


class _Refused(httpx.AsyncBaseTransport):
    """Stands for a proxy the engine cannot use: every request through it is refused before anything leaves."""

    def __init__(self, error: ProxyUnusable) -> None:
        self.error = error

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise ProxyUnusable(str(self.error))


class AsyncClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` over aiohttp: the same arguments, the environment's proxies included (http and https ones).

    A request through a proxy the engine cannot use raises ``ProxyUnusable`` before anything
    leaves; a proxy variable httpx cannot read is a ``SettingInvalid`` at once. TLS is verified
    with ``tls_context`` unless ``verify=`` says otherwise.
    """

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("verify", tls_context(kw.get("trust_env", True)))
        try:
            super().__init__(**kw)
        except ValueError as exc:
            if "proxy" not in str(exc).lower():
                raise
            named = ", ".join(n for n in PROXY_VARIABLES if os.environ.get(n)) or "a proxy variable"
            raise SettingInvalid(
                f"{named}: not a proxy URL seqnb can use; write e.g. http://proxy.example:3128, or unset it"
            ) from None

    def _init_transport(  # type: ignore[override]
        self,
        verify: ssl.SSLContext | str | bool = True,
        trust_env: bool = True,
        limits: httpx.Limits = _LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
        **kw: Any,
    ) -> httpx.AsyncBaseTransport:
        if transport is not None:
            return transport
        return AioTransport(verify=verify, trust_env=trust_env, limits=limits)

    def _init_proxy_transport(  # type: ignore[override]
        self,
        proxy: httpx.Proxy,
        verify: ssl.SSLContext | str | bool = True,
        trust_env: bool = True,
        limits: httpx.Limits = _LIMITS,
        **kw: Any,
    ) -> httpx.AsyncBaseTransport:
        problem = _proxy_problem(proxy.url)
        if problem is not None:
            return _Refused(problem)
        return AioTransport(verify=verify, trust_env=trust_env, limits=limits, proxy=proxy)
