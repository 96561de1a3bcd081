"""The bytes of an API call: HTTP/1.1 keep-alive connections on the running loop, and the answer read back.

httpx's client and its default transport (httpcore over anyio) spent 0.9-1.5 ms of CPU on each
call here, most of a run's client cost in a 10,000-run sweep. ``Wire`` is h11 (httpx's own
HTTP/1.1 parser) over an ``asyncio.Protocol``: a fraction of that (``benchmarks/poller.py``). It
does what seqnb's calls need and no more: one origin (the API's), plain or TLS connections kept
alive (an idle one is dropped once the server has closed it or sent it anything, or after
``keepalive_expiry``), whole answers read up to ``max_answer`` bytes, and httpx's exceptions, so
that ``Transport`` maps failures as it always has: ``httpx.ConnectError`` and
``httpx.ConnectTimeout`` only while no byte of the request has left. ``HttpxWire`` sends through
an ``httpx.AsyncClient`` instead: one given to the ``Transport``, or httpx's own when the
environment names a proxy (``proxied``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
import urllib.request
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

import h11
import httpx

from .auth import Secret

__all__ = ["MAX_ANSWER", "Answer", "Engine", "HttpxWire", "Wire", "default_tls", "proxied"]

MAX_ANSWER = 64 * 1024 * 1024
"""Largest answer read (64 MiB): a host that sends more is cut off, not held in memory."""


@functools.cache
def default_tls() -> ssl.SSLContext:
    """The verifying TLS context every wire shares (making one reads the CA bundle: 25 ms of CPU)."""
    return httpx.create_ssl_context()


def proxied() -> bool:
    """Whether the environment names an HTTP(S) proxy (``HTTPS_PROXY`` and the like): then httpx sends."""
    return any(k in ("http", "https", "all") for k in urllib.request.getproxies())


class Answer:
    """An HTTP answer as ``Transport`` reads it: status, headers (looked up by lower-case name), body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        """The body as JSON (``ValueError`` if it is not)."""
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"<Answer {self.status_code}, {len(self.content)} bytes>"


class Engine(Protocol):
    """What sends a call: ``Wire``, or ``HttpxWire``."""

    async def exchange(self, method: str, path: str, body: bytes | None) -> Answer: ...

    async def aclose(self) -> None: ...


class HttpxWire:
    """Calls through an ``httpx.AsyncClient`` (one given to the ``Transport``, or one for a proxy)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def exchange(self, method: str, path: str, body: bytes | None) -> Answer:
        headers = {"Content-Type": "application/json"} if body is not None else None
        response = await self.http.request(method, path, content=body, headers=headers)
        return Answer(response.status_code, response.headers, response.content)

    async def aclose(self) -> None:
        await self.http.aclose()


class _Socket(asyncio.Protocol):
    """One TCP (or TLS) connection: bytes in a buffer, and a future for whoever waits for more."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer: list[bytes] = []
        self.ended = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer.append(data)
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def receive(self) -> bytes:
        """The bytes received since the last call; b"" once the connection has ended."""
        while not self.buffer and not self.ended:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        data = b"".join(self.buffer)
        self.buffer.clear()
        return data

    def reusable(self) -> bool:
        """Open, and silent since its last answer (a server that sent anything unasked means to close)."""
        return not (self.ended or self.buffer or self.transport is None or self.transport.is_closing())

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Connection:
    def __init__(self, socket: _Socket) -> None:
        self.socket = socket
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024)
        self.idle_since = 0.0


class Wire:
    """HTTP/1.1 to one origin (``base_url``'s), the token on every request, connections kept alive."""

    def __init__(
        self,
        base_url: str,
        token: Secret,
        timeout: httpx.Timeout,
        *,
        max_idle: int = 32,
        keepalive_expiry: float = 4.0,
        max_answer: int = MAX_ANSWER,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL {base_url!r}: expected http:// or https:// and a host")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        default_port = parts.port is None or parts.port == (443 if self.tls else 80)
        name = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = name if default_port else f"{name}:{self.port}"
        self._prefix = parts.path.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._ssl = ssl_context
        self.max_idle = max_idle
        self.keepalive_expiry = keepalive_expiry
        self.max_answer = max_answer
        self._idle: deque[_Connection] = deque()
        self._closed = False
        self.connections_made = 0
        """Connections opened so far (keep-alive at work: far fewer than the calls)."""

    def __repr__(self) -> str:
        return f"<Wire {'https' if self.tls else 'http'}://{self._host_header}{self._prefix}>"

    async def exchange(self, method: str, path: str, body: bytes | None) -> Answer:
        """One request and its whole answer; httpx's exceptions on failure (the connection is then dropped)."""
        target = self._prefix + path
        if not (target.startswith("/") and target.isascii() and target.isprintable() and " " not in target):
            raise httpx.UnsupportedProtocol(f"{target!r} is not a path this client sends")  # nothing left
        conn = self._take()
        if conn is None:
            conn = await self._connect()
        try:
            answer = await self._exchange(conn, method, target, body)
        except BaseException:
            conn.socket.close()
            raise
        self._give_back(conn)
        return answer

    async def aclose(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().socket.close()

    def _take(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the likeliest to be alive
            if conn.socket.reusable() and now - conn.idle_since < self.keepalive_expiry:
                return conn
            conn.socket.close()
        return None

    def _give_back(self, conn: _Connection) -> None:
        h = conn.h11
        if h.our_state is not h11.DONE or h.their_state is not h11.DONE or self._closed:
            conn.socket.close()  # the server asked to close, or the client is closing: never reuse
            return
        h.start_next_cycle()
        if len(self._idle) >= self.max_idle:
            conn.socket.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    async def _connect(self) -> _Connection:
        tls = None
        if self.tls:
            tls = self._ssl or default_tls()
        loop = asyncio.get_running_loop()
        deadline = self._timeout.connect
        try:
            async with asyncio.timeout(deadline):
                _, socket = await loop.create_connection(
                    _Socket, self.host, self.port, ssl=tls, server_hostname=self.host if tls else None
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection to {self._host_header} within {deadline} s") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        self.connections_made += 1
        return _Connection(socket)

    async def _exchange(self, conn: _Connection, method: str, target: str, body: bytes | None) -> Answer:
        h = conn.h11
        headers = [
            ("Host", self._host_header),
            ("User-Agent", "seqnb"),
            ("Accept", "application/json"),
            ("Authorization", f"Bearer {self._token.reveal()}"),
        ]
        if body is not None:
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        elif method != "GET":
            headers.append(("Content-Length", "0"))
        data = h.send(h11.Request(method=method, target=target, headers=headers)) or b""
        if body:
            data += h.send(h11.Data(data=body)) or b""
        data += h.send(h11.EndOfMessage()) or b""
        assert conn.socket.transport is not None
        deadline = self._timeout.read
        try:
            conn.socket.transport.write(data)
            async with asyncio.timeout(deadline):
                return await self._answer(conn)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(f"no answer within {deadline} s") from exc
        except h11.RemoteProtocolError as exc:
            raise httpx.RemoteProtocolError(f"the server broke HTTP/1.1: {exc}") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc

    async def _answer(self, conn: _Connection) -> Answer:
        h = conn.h11
        status = 0
        headers: dict[str, str] = {}
        chunks: list[bytes] = []
        size = 0
        while True:
            event = h.next_event()
            if event is h11.NEED_DATA:
                data = await conn.socket.receive()
                if not data and conn.socket.error is not None:
                    raise httpx.ReadError(f"connection lost: {conn.socket.error}")
                h.receive_data(data)  # b"": the server closed; h11 says whether the answer was complete
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}  # lower-cased
            elif isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_answer:
                    raise httpx.RemoteProtocolError(f"the answer is over {self.max_answer // 2**20} MiB: cut off")
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return Answer(status, headers, b"".join(chunks))
            elif isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError("the server closed the connection without a complete answer")
            # else h11.InformationalResponse (1xx): the real answer follows
