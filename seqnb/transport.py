"""HTTP to a RunComfy-compatible API: one httpx.AsyncClient, errors mapped in one place, safe retries.

Retry rules (they decide whether money is spent twice):
- status, result and cancel are idempotent: retried with exponential backoff and full jitter on
  429, 5xx, an HTTP 200 carrying an ``error_code`` of the server kind, timeouts and transport errors;
- submit is retried only when the request certainly did not reach the service: the connection
  was never made, or the service answered 429. Anything else that leaves it in doubt raises an
  error with ``maybe_sent`` set, and the run becomes ``unknown``.
A 429 anywhere slows every call of this client down until its Retry-After has passed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import errors
from .auth import BearerAuth, Secret

__all__ = ["RetryPolicy", "Transport", "map_error"]

log = logging.getLogger("seqnb.transport")
_random = random.Random()  # backoff jitter; the global generator belongs to the user

_AUTH_CODES = {400004, 403001}
_CODE_CLASSES: dict[int, type[errors.APIError]] = {
    400001: errors.ModelNotFound,
    400002: errors.InsufficientBalance,
    400004: errors.AuthError,
    403001: errors.AuthError,
    404001: errors.NotFound,
}


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    """Tries in all for an idempotent call."""
    base: float = 0.25
    cap: float = 8.0
    submit_attempts: int = 4
    """Tries for a submit that certainly did not arrive (refused connection, 429)."""

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return _random.uniform(0, min(self.cap, self.base * 2**attempt))


def _message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("error_message", "message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, list):
                parts = []
                for item in value:
                    if isinstance(item, dict):
                        loc = ".".join(str(x) for x in item.get("loc", []) if x != "body")
                        parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg", item)))
                    else:
                        parts.append(str(item))
                return "; ".join(parts)
            if value:
                return str(value)
    return str(body)[:300] if body else "no details"


def _fields(body: Any) -> list[str]:
    if isinstance(body, dict) and isinstance(body.get("detail"), list):
        return [str(d["loc"][-1]) for d in body["detail"] if isinstance(d, dict) and d.get("loc")]
    return []


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def map_error(response: httpx.Response, request_id: str | None = None) -> errors.APIError | None:
    """The error a response stands for, or None. Also catches HTTP 200 bodies with an ``error_code``."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    code = body.get("error_code") if isinstance(body, dict) else None
    if response.status_code < 400 and not code:
        return None
    status = response.status_code
    message = _message(body)
    kw: dict[str, Any] = {"status_code": status, "error_code": code, "request_id": request_id, "body": body}
    if code in _CODE_CLASSES:
        return _CODE_CLASSES[code](message, **kw)
    if status == 429:
        return errors.RateLimited(message, retry_after=_retry_after(response), **kw)
    if status in (401, 403):
        return errors.AuthError(message, **kw)
    if status == 404:
        return errors.NotFound(message, **kw)
    if status in (400, 422):
        return errors.InputRejected(message, fields=_fields(body), **kw)
    return errors.ServerError(message, **kw)


class Transport:
    """The client's only door to the network."""

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
        self._gate_until = 0.0

    def _client(self) -> httpx.AsyncClient:
        # Made on first use, so it belongs to the loop that uses it.
        if self._http is None:
            # httpcore probes every idle keep-alive connection on each request (a poll() syscall and
            # more), which tripled client CPU per call at 32 idle connections. On loopback a new
            # connection is nearly free, so keep few; to a remote service keep them all (TLS handshakes).
            local = (urlsplit(self.base_url).hostname or "") in ("127.0.0.1", "localhost", "::1")
            keep = min(8, self.max_concurrency) if local else self.max_concurrency
            limits = httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=keep)
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                auth=BearerAuth(self._token),
                timeout=self._timeout,
                limits=limits,
                headers={"User-Agent": "seqnb"},
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    def slow_down(self, seconds: float) -> None:
        """Hold every call of this client back for ``seconds`` (a 429 was seen)."""
        self._gate_until = max(self._gate_until, time.monotonic() + seconds)

    async def _pass_gate(self) -> None:
        wait = self._gate_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _send(self, method: str, path: str, json: Any, request_id: str | None) -> Any:
        await self._pass_gate()
        if self._limit is None:
            self._limit = asyncio.Semaphore(self.max_concurrency)
        try:
            # At most max_concurrency calls in flight: the service is spared bursts, and httpcore's
            # pool (whose queue handling grows with the square of waiting requests) never queues.
            async with self._limit:
                response = await self._client().request(method, path, json=json)
        except httpx.ConnectError as exc:
            raise errors.ConnectError(f"cannot reach {self.base_url}: {exc}", url=self.base_url) from exc
        except httpx.ConnectTimeout as exc:
            raise errors.ConnectError(f"timed out connecting to {self.base_url}", url=self.base_url) from exc
        except httpx.TimeoutException as exc:
            raise errors.Timeout(f"{method} {path}: no answer within the timeout") from exc
        except httpx.TransportError as exc:
            raise errors.TransportError(f"{method} {path}: {type(exc).__name__}: {exc}", url=self.base_url) from exc
        error = map_error(response, request_id)
        if error is not None:
            if isinstance(error, errors.RateLimited):
                self.slow_down(error.retry_after if error.retry_after is not None else 1.0)
            raise error
        try:
            return response.json()
        except ValueError as exc:
            raise errors.ServerError(f"{method} {path}: answer is not JSON", status_code=response.status_code) from exc

    @staticmethod
    def _retryable(exc: errors.SeqnbError) -> bool:
        return isinstance(exc, errors.RateLimited | errors.ServerError | errors.TransportError | errors.Timeout)

    async def call(self, method: str, path: str, *, request_id: str | None = None, json: Any = None) -> Any:
        """An idempotent call, retried on 429, 5xx, timeouts and transport errors."""
        attempt = 0
        while True:
            try:
                return await self._send(method, path, json, request_id)
            except errors.SeqnbError as exc:
                attempt += 1
                if not self._retryable(exc) or attempt >= self.retry.attempts:
                    raise
                delay = self.retry.backoff(attempt)
                log.debug("retrying %s %s in %.2fs after %s", method, path, delay, type(exc).__name__)
                await asyncio.sleep(delay)

    async def submit(self, model_id: str, payload: dict[str, Any]) -> Any:
        """POST a new job; retried only while it certainly did not arrive."""
        attempt = 0
        while True:
            try:
                return await self._send("POST", f"/models/{model_id}", payload, None)
            except (errors.ConnectError, errors.RateLimited):
                attempt += 1
                if attempt >= self.retry.submit_attempts:
                    raise
                await asyncio.sleep(self.retry.backoff(attempt))
