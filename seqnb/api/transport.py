"""HTTP to a RunComfy-compatible API: seqnb's engine (aiohttp), errors mapped in one place, safe retries.

Calls go through aiohttp's connection pool (``seqnb._http.session``: the hot path of a sweep, a
third of the CPU per call of httpx's interface over the same pool), or through the
``httpx.AsyncClient`` a user gives. seqnb's own rules on top of the library: the token only on
the API's origin (``same_origin``), no redirect followed, the environment's proxy as httpx reads
it (``proxy_for``), answers read as they arrive and cut off beyond ``MAX_ANSWER``, a deadline on
every attempt, and every failure mapped in one place: aiohttp's to httpx's exceptions by
``seqnb._http.http_error``, those and the answers to seqnb's errors by ``Transport._send`` and
``map_error``. ``ConnectError`` (certainly not sent) only while no connection was made.

Retry rules (they decide whether money is spent twice):
- status, result and cancel are idempotent: retried with exponential backoff and full jitter on
  429, 5xx, an HTTP 200 carrying an ``error_code`` of the server kind, timeouts and transport errors;
- submit is retried only when the request certainly did not reach the service: the connection
  was never made, or the service answered 429. Anything else that leaves it in doubt raises an
  error with ``maybe_sent`` set, and the run becomes ``unknown``; an answer that refuses it (any
  4xx, or an HTTP 200 with an ``error_code``) is definite: nothing was charged. A 402 (insufficient
  balance) is never retried, on any call.
A 429 slows every call of this client down until its Retry-After has passed (capped at
``RetryPolicy.max_retry_after``), except cancels: they go out at once. Every attempt has a deadline.
"""

from __future__ import annotations

import asyncio
import json as _json
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import aiohttp
import httpx

from .. import errors
from .._http import http_error, proxy_for, session
from ..model.references import MAX_REQUEST_BYTES
from .auth import Secret, same_origin
from .protocol import error_code, error_fields, error_message

__all__ = ["MAX_ANSWER", "MAX_BODY", "Answer", "RetryPolicy", "Route", "Transport", "map_error", "retry_after_seconds"]

log = logging.getLogger("seqnb.transport")
_random = random.Random()  # backoff jitter; the global generator belongs to the user

Route = Literal["submit", "status", "result", "cancel"]

MAX_BODY = MAX_REQUEST_BYTES
"""Largest request body seqnb sends (64 MiB, the cap of RunComfy's own nodes); a larger one never leaves."""

MAX_ANSWER = 64 * 1024 * 1024
"""Largest answer read (64 MiB, after decompression): a host that sends more is cut off, not held in memory."""

_CODE_CLASSES: dict[int, type[errors.APIError]] = {
    400001: errors.ModelNotFound,
    400002: errors.InsufficientBalance,
    400004: errors.AuthError,
    403001: errors.PermissionDenied,
    404001: errors.RequestNotFound,
}


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for: a number, or an HTTP date; None if unreadable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    """Tries in all for an idempotent call."""
    base: float = 0.25
    cap: float = 8.0
    submit_attempts: int = 4
    """Tries for a submit that certainly did not arrive (refused connection, 429)."""
    max_retry_after: float = 60.0
    """Longest wait a ``Retry-After`` header can impose on this client, in seconds."""

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return _random.uniform(0, min(self.cap, self.base * 2**attempt))

    def retry_after(self, value: str | float | None) -> float | None:
        """A ``Retry-After`` value (header text or seconds) as seconds to wait, at most ``max_retry_after``."""
        seconds = retry_after_seconds(value) if isinstance(value, str) or value is None else max(0.0, value)
        return None if seconds is None else min(seconds, self.max_retry_after)


def map_error(
    response: Answer | httpx.Response, request_id: str | None = None, route: Route | None = None
) -> errors.APIError | None:
    """The error a response stands for, or None. Also catches HTTP 200 bodies with an ``error_code``.

    A 402 on any call is ``InsufficientBalance`` (never retried). On submit a 404 means the model
    id is unknown, and any refusal the service states (another
    4xx, or an HTTP 200 with an ``error_code``) is definite: nothing was made, nothing charged.
    """
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    has_code, code = error_code(body)
    status = response.status_code
    if status < 400 and not has_code:
        return None
    message = error_message(body)
    kw: dict[str, Any] = {"status_code": status, "error_code": code, "request_id": request_id, "body": body}
    if code in _CODE_CLASSES:
        return _CODE_CLASSES[code](message, **kw)
    if status == 402:  # insufficient balance, on any call, as RunComfy's own nodes read it (no error_code needed)
        return errors.InsufficientBalance("insufficient balance" if message == "no details" else message, **kw)
    if status == 429:
        return errors.RateLimited(message, retry_after=retry_after_seconds(response.headers.get("retry-after")), **kw)
    if status in (401, 403):
        return errors.AuthError(message, **kw)
    if status == 404:
        return errors.ModelNotFound(message, **kw) if route == "submit" else errors.RequestNotFound(message, **kw)
    if status in (400, 422):
        return errors.InputRejected(message, fields=error_fields(body), **kw)
    if 400 <= status < 500 or (route == "submit" and status < 400):
        return errors.Refused(message, **kw)
    return errors.ServerError(message, **kw)


class Answer:
    """An HTTP answer as ``Transport`` reads it: status, headers (looked up by lower-case name), the whole body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Mapping[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def json(self) -> Any:
        """The body as JSON (``ValueError`` if it is not)."""
        return _json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"<Answer {self.status_code}, {len(self.content)} bytes>"


class _TooLarge(Exception):
    """An answer over ``MAX_ANSWER``: cut off."""


class Transport:
    """The client's only door to the network: seqnb's engine (aiohttp's pool), or the ``httpx.AsyncClient`` given."""

    def __init__(
        self,
        base_url: str,
        token: Secret,
        *,
        timeout: float | httpx.Timeout = 30.0,
        max_concurrency: int = 32,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout, connect=10.0)
        self.max_concurrency = max_concurrency
        self._limit: asyncio.Semaphore | None = None
        self._token = token
        self._http = http
        self._pool: aiohttp.ClientSession | None = None  # made on first use, on the loop that uses it
        # read now, so that a proxy the engine cannot use is said before any call
        self._proxy = proxy_for(self.base_url) if http is None else None
        self._pool_timeout = aiohttp.ClientTimeout(
            total=None, connect=self._timeout.connect, sock_read=self._timeout.read
        )
        self._closed = False
        self._gate_until = 0.0

    async def aclose(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _exchange(self, method: str, path: str, content: bytes | None) -> Answer:
        """One request and its whole answer, read as it arrives and cut off beyond ``MAX_ANSWER``."""
        if self._http is not None:
            return await _through(self._http, method, path, content)
        url = self.base_url + path if path.startswith("/") else path
        proxy = self._proxy
        if self._pool is None:
            if self._closed:  # used again after a close: the environment as it is now
                proxy = self._proxy = proxy_for(self.base_url)
            self._pool = session(limit=self.max_concurrency, keepalive=4.0)
        if not path.startswith("/"):
            proxy = proxy_for(url)
        headers = {"User-Agent": "seqnb", "Accept": "application/json"}
        if path.startswith("/") or same_origin(url, self.base_url):  # the token on the API's origin only
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        if content is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._pool.request(
                method,
                url,
                data=content,
                headers=headers,
                allow_redirects=False,
                timeout=self._pool_timeout,
                proxy=None if proxy is None else str(proxy.url),
                proxy_auth=None if proxy is None or proxy.auth is None else aiohttp.BasicAuth(*proxy.auth),
                proxy_headers=None if proxy is None else proxy.headers,
            ) as response:
                body = await _capped(response.content.iter_chunked(65536), response.content_length)
                return Answer(response.status, response.headers, body)
        except aiohttp.ClientError as exc:
            mapped = http_error(exc, httpx.URL(url))
            if mapped is None:
                raise
            raise mapped from exc

    def slow_down(self, seconds: float) -> None:
        """Hold every call of this client but cancels back for ``seconds`` (a 429 was seen), at most ``max_retry_after``."""
        seconds = min(seconds, self.retry.max_retry_after)
        self._gate_until = max(self._gate_until, time.monotonic() + seconds)

    async def _pass_gate(self) -> None:
        wait = self._gate_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    @property
    def deadline(self) -> float:
        """Seconds one attempt may take from the moment it leaves, answer included."""
        t = self._timeout
        return max(x for x in (t.connect, t.read, t.write, t.pool, 1.0) if x is not None)

    async def _send(
        self, method: str, path: str, json: Any, request_id: str | None, route: Route | None, gate: bool = True
    ) -> Any:
        if gate:
            await self._pass_gate()
        if self._limit is None:
            self._limit = asyncio.Semaphore(self.max_concurrency)
        try:
            body = (
                None if json is None else _json.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            )
            content = None if body is None else body.encode("utf-8")
        except (UnicodeEncodeError, TypeError, ValueError) as exc:
            raise errors.Unsendable(f"{method} {path}: the request cannot be encoded ({exc}); it was not sent") from exc
        if content is not None and len(content) > MAX_BODY:
            raise errors.Unsendable(
                f"{method} {path}: the request body is {len(content) / 2**20:.1f} MiB, over the "
                f"{MAX_BODY // 2**20} MiB a request may carry; it was not sent: make it smaller "
                "(fewer or smaller inline images, or host them and pass their URLs)"
            )
        if not (path.isascii() and path.isprintable() and " " not in path):
            raise errors.Unsendable(f"{method} {path!r}: not a path this client sends; it was not sent")
        try:
            # At most max_concurrency calls in flight: the service is spared bursts.
            async with self._limit, asyncio.timeout(self.deadline):
                response = await self._exchange(method, path, content)
        except errors.SeqnbError:  # a proxy the engine cannot use: refused before anything left
            raise
        except httpx.ConnectError as exc:
            raise errors.ConnectError(f"cannot reach {self.base_url}: {exc}", url=self.base_url) from exc
        except httpx.ConnectTimeout as exc:
            raise errors.ConnectError(f"timed out connecting to {self.base_url}", url=self.base_url) from exc
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise errors.Unsendable(f"{method} {path}: {exc}; it was not sent") from exc
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise errors.CallTimeout(f"{method} {path}: no answer within {self.deadline:g} s") from exc
        except _TooLarge as exc:
            raise errors.TransportError(
                f"{method} {path}: the answer is over {MAX_ANSWER // 2**20} MiB, cut off; the request may have arrived",
                url=self.base_url,
            ) from exc
        except httpx.TransportError as exc:
            raise errors.TransportError(
                f"{method} {path}: no complete answer ({exc}); the request may have arrived", url=self.base_url
            ) from exc
        except Exception as exc:  # anything else from the network stack: no complete answer, it may have arrived
            raise errors.TransportError(
                f"{method} {path}: no complete answer ({type(exc).__name__}: {exc}); the request may have arrived",
                url=self.base_url,
            ) from exc
        error = map_error(response, request_id, route)
        if error is not None:
            if isinstance(error, errors.RateLimited) and gate:
                self.slow_down(error.retry_after if error.retry_after is not None else 1.0)
            raise error
        try:
            return response.json()
        except ValueError as exc:
            raise errors.ServerError(f"{method} {path}: answer is not JSON", status_code=response.status_code) from exc

    async def call(
        self,
        method: str,
        path: str,
        *,
        request_id: str | None = None,
        json: Any = None,
        route: Route | None = None,
        gate: bool = True,
    ) -> Any:
        """A call, retried with backoff: an idempotent one on 429, 5xx, timeouts and transport errors; a submit
        (``route="submit"``) only while it certainly did not arrive (no connection made, or a 429).

        ``gate=False`` (cancels) skips the wait a 429 imposed on the client: it goes out at once,
        and after a 429 of its own waits its own Retry-After (capped) before trying again.
        """
        if route == "submit":
            retryable: tuple[type[errors.SeqnbError], ...] = (errors.ConnectError, errors.RateLimited)
            attempts = self.retry.submit_attempts
        else:
            retryable, attempts = (errors.RateLimited, errors.ServerError, errors.TransportError), self.retry.attempts
        attempt = 0
        while True:
            try:
                return await self._send(method, path, json, request_id, route, gate)
            except retryable as exc:
                attempt += 1
                if attempt >= attempts:
                    raise
                delay = self.retry.backoff(attempt)
                if not gate and isinstance(exc, errors.RateLimited):
                    delay = max(delay, self.retry.retry_after(exc.retry_after) or 0.0)
                log.debug("retrying %s %s in %.2fs after %s", method, path, delay, type(exc).__name__)
                await asyncio.sleep(delay)

    async def submit(self, model_id: str, payload: dict[str, Any]) -> Any:
        """POST a new job; retried only while it certainly did not arrive."""
        return await self.call("POST", f"/models/{model_id}", json=payload, route="submit")


async def _through(http: httpx.AsyncClient, method: str, path: str, content: bytes | None) -> Answer:
    """``Transport._exchange`` through a given ``httpx.AsyncClient`` (its own base URL, headers and auth)."""
    headers = {"Content-Type": "application/json"} if content is not None else None
    async with http.stream(method, path, content=content, headers=headers) as response:
        declared = response.headers.get("content-length", "")
        body = await _capped(response.aiter_bytes(), int(declared) if declared.isdigit() else None)
    return Answer(response.status_code, response.headers, body)


async def _capped(chunks: AsyncIterator[bytes], declared: int | None) -> bytes:
    """An answer's body, decompressed, read as it arrives; ``_TooLarge`` as soon as it is over ``MAX_ANSWER``."""
    if (declared or 0) > MAX_ANSWER:
        raise _TooLarge
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_ANSWER:
            raise _TooLarge
        parts.append(chunk)
    return b"".join(parts)


async def get_once(base_url: str, token: Secret, path: str, deadline: float, *, what: str, attempts: int = 1) -> Any:
    """One GET on a short-lived transport, answered within ``deadline`` seconds or ``seqnb.Timeout`` naming ``what``.

    For side calls that must never hold a user up (the catalog, the balance).
    """
    transport = Transport(
        base_url, token, timeout=httpx.Timeout(deadline), retry=RetryPolicy(attempts=attempts, base=0.1, cap=0.5)
    )
    try:
        return await asyncio.wait_for(transport.call("GET", path), deadline)
    except TimeoutError:
        raise errors.CallTimeout(f"{what} gave no answer within {deadline:g} s") from None
    finally:
        await transport.aclose()
