"""Downloading one result image: without the API token, from public hosts only, checked as it arrives.

The HTTP client here is the image cache's own: it never carries an Authorization header, goes
only where ``seqnb.images.hosts`` lets it (every redirect hop included) and follows few
redirects (none for a RunComfy run's images). A download is refused as soon as the answer shows it cannot be an image worth
keeping (gone, not an image, over the size cap), and retried on 5xx and network errors. Every
failure of one URL becomes one ``ImageRefused`` with a ``reason`` (``refusal``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path

import httpx

from ..errors import ImageRefused
from .hosts import RUNCOMFY_DOMAIN, HostBlocked, HostPolicy, InvalidImageURL, PublicOnlyTransport, check_url
from .store import disk_refusal

__all__ = ["MAX_REDIRECTS", "data_uri_bytes", "download", "image_client", "refusal"]

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5


def image_client(
    policy: HostPolicy, timeout: float, allow: Iterable[str] = (), *, runcomfy_only: bool = False
) -> httpx.AsyncClient:
    """An HTTP client for images: no Authorization header ever, public hosts only (and ``allow``), few redirects;
    ``runcomfy_only``: RunComfy's own hosts only (and ``allow``), no redirect followed, as RunComfy's own tools."""
    chosen = policy.including(allow)
    chosen = dataclasses.replace(chosen, runcomfy_only=chosen.runcomfy_only or runcomfy_only)  # never loosened
    return httpx.AsyncClient(
        transport=PublicOnlyTransport(chosen),
        timeout=timeout,
        follow_redirects=not runcomfy_only,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
    )


async def _download_once(http: httpx.AsyncClient, url: str, max_bytes: int) -> bytes:
    async with http.stream("GET", url) as response:
        if response.is_redirect:  # only a client that follows none sees one: a RunComfy run's images
            target = response.headers.get("location", "")[:200]
            raise ImageRefused(
                url,
                "blocked",
                f"redirects to {target}: the images of a RunComfy run are downloaded only from https hosts under "
                f"{RUNCOMFY_DOMAIN}, without following redirects, as RunComfy's own tools do",
            )
        if response.status_code in (403, 404, 410):
            raise ImageRefused(
                url, "expired", f"is gone (HTTP {response.status_code}): the URL expired or never existed"
            )
        if response.status_code >= 400:
            raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request, response=response)
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if not kind.startswith("image/"):
            raise ImageRefused(url, "not_an_image", f"is served as {kind or 'no content type'!r}, not an image")
        try:
            declared = int(response.headers.get("content-length") or 0)
        except ValueError:
            declared = 0
        if declared > max_bytes:
            raise ImageRefused(url, "too_large", f"is {declared:,} bytes, over the {max_bytes:,}-byte cap")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise ImageRefused(url, "too_large", f"is over the {max_bytes:,}-byte cap")
            chunks.append(chunk)
        return b"".join(chunks)


async def download(http: httpx.AsyncClient, url: str, *, max_bytes: int, retries: int) -> bytes:
    """The bytes at an http(s) ``url``, at most ``max_bytes``; tried up to ``retries`` times on 5xx and network errors."""
    check_url(httpx.URL(url))  # a URL no download can come from fails here, before any network
    for attempt in range(retries):
        try:
            data = await _download_once(http, url, max_bytes)
            break
        except (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError, httpx.HTTPStatusError):
            if attempt + 1 >= retries:
                raise
            await asyncio.sleep(0.25 * 2**attempt)
    return data


def data_uri_bytes(url: str) -> bytes:
    """The image a ``data:image/...;base64,`` URI carries; ``ImageRefused`` (not_an_image) for any other."""
    header, _, payload = url.partition(",")
    if not header.startswith("data:image/") or ";base64" not in header:
        raise ImageRefused(url, "not_an_image", "is a data: URI that is not a base64 image")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise ImageRefused(url, "not_an_image", "is a data: URI with broken base64") from None


def refusal(url: str, exc: BaseException, *, file_deadline: float, directory: Path) -> ImageRefused:
    """Any failure of one URL as the ``ImageRefused`` that stands in its place (``directory``: where it was to be kept)."""
    if isinstance(exc, ImageRefused):
        return exc
    if isinstance(exc, HostBlocked):
        hop = "" if exc.url == url else f"redirects to {exc.url}: "
        return ImageRefused(url, "blocked", hop + exc.detail)
    if isinstance(exc, InvalidImageURL):
        hop = "" if exc.url == url else f"redirects to {exc.url}, which "
        return ImageRefused(url, "invalid", hop + exc.detail)
    if isinstance(exc, TimeoutError):
        return ImageRefused(
            url,
            "timeout",
            f"took longer than the {file_deadline:g} s allowed for one image; "
            "try again later, or allow more with ImageCache(file_deadline=...)",
        )
    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError)):
        return ImageRefused(url, "invalid", f"is not a URL an image can be downloaded from ({exc})")
    if isinstance(exc, httpx.TooManyRedirects):
        return ImageRefused(url, "unreachable", f"redirects more than {MAX_REDIRECTS} times (a redirect loop?)")
    if isinstance(exc, (httpx.HTTPError, httpx.StreamError)):
        return ImageRefused(url, "unreachable", f"could not be downloaded ({type(exc).__name__}: {exc})")
    if isinstance(exc, OSError):
        return disk_refusal(url, exc, directory)
    log.error("downloading %s failed unexpectedly", url, exc_info=exc)
    return ImageRefused(url, "error", f"failed unexpectedly ({type(exc).__name__}: {exc})")
