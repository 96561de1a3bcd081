"""The image cache: result images downloaded without the API token, verified, kept by content hash.

Result URLs expire, and on Binder the browser cannot reach a URL only the kernel can: images are
downloaded as soon as a run completes (with an HTTP client that never carries the API token),
checked (size cap, content type, decompression-bomb guard), written atomically and kept under
their SHA-256, with small JPEG thumbnails next to them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from .errors import ImageRefused

__all__ = ["MAX_IMAGE_BYTES", "CachedImage", "ImageCache", "ImageRefused", "default_cache_dir"]

MAX_IMAGE_BYTES = 50 * 1024 * 1024
"""The model pages recommend images of at most 50 MB."""


def default_cache_dir() -> Path:
    """``$SEQNB_CACHE``, else ``~/.cache/seqnb/images``."""
    return Path(os.environ.get("SEQNB_CACHE") or Path.home() / ".cache" / "seqnb" / "images").expanduser()


@dataclass(frozen=True)
class CachedImage:
    """One downloaded, verified image in the cache."""

    url: str
    path: Path
    sha256: str
    width: int
    height: int
    bytes: int
    format: str


class ImageCache:
    """Content-addressed images on disk, downloaded without the API token."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int = MAX_IMAGE_BYTES,
        timeout: float = 60.0,
        retries: int = 3,
    ) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.retries = retries
        self.downloads = 0

    # --- layout -----------------------------------------------------------------------------

    def _object(self, sha: str, ext: str) -> Path:
        return self.directory / "objects" / sha[:2] / f"{sha}.{ext}"

    def _url_key(self, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.directory / "urls" / key[:2] / key

    def lookup(self, url: str) -> CachedImage | None:
        """The cached image of a URL, if it was fetched before."""
        index = self._url_key(url)
        try:
            record = json.loads(index.read_text())
        except (OSError, ValueError):
            return None
        path = self._object(record["sha256"], record["ext"])
        if not path.exists():
            return None
        return CachedImage(
            url, path, record["sha256"], record["width"], record["height"], record["bytes"], record["format"]
        )

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- fetching ---------------------------------------------------------------------------

    def _verify(self, url: str, data: bytes) -> tuple[str, int, int]:
        """Decode with Pillow's decompression-bomb guard on; returns (format, width, height)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as img:
                    fmt, (width, height) = (img.format or "").lower(), img.size
                    img.verify()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRefused(url, "bomb", f"refused as a decompression bomb ({exc})") from None
        except Exception as exc:
            raise ImageRefused(url, "not_an_image", f"is not a readable image ({type(exc).__name__}: {exc})") from None
        if fmt not in ("jpeg", "png", "webp", "gif", "bmp", "tiff"):
            raise ImageRefused(url, "not_an_image", f"has unsupported image format {fmt!r}")
        return fmt, width, height

    def store(self, url: str, data: bytes) -> CachedImage:
        """Verify bytes and keep them under their hash, indexed by URL."""
        if len(data) > self.max_bytes:
            raise ImageRefused(url, "too_large", f"is {len(data):,} bytes, over the {self.max_bytes:,}-byte cap")
        fmt, width, height = self._verify(url, data)
        sha = hashlib.sha256(data).hexdigest()
        ext = {"jpeg": "jpg"}.get(fmt, fmt)
        path = self._object(sha, ext)
        if not path.exists():
            self._atomic_write(path, data)
        record = {"sha256": sha, "ext": ext, "width": width, "height": height, "bytes": len(data), "format": fmt}
        self._atomic_write(self._url_key(url), json.dumps(record).encode())
        return CachedImage(url, path, sha, width, height, len(data), fmt)

    async def _download(self, http: httpx.AsyncClient, url: str) -> bytes:
        async with http.stream("GET", url) as response:
            if response.status_code in (403, 404, 410):
                raise ImageRefused(
                    url, "expired", f"is gone (HTTP {response.status_code}): the URL expired or never existed"
                )
            if response.status_code >= 400:
                raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request, response=response)
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not kind.startswith("image/"):
                raise ImageRefused(url, "not_an_image", f"is served as {kind or 'no content type'!r}, not an image")
            declared = int(response.headers.get("content-length") or 0)
            if declared > self.max_bytes:
                raise ImageRefused(url, "too_large", f"is {declared:,} bytes, over the {self.max_bytes:,}-byte cap")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise ImageRefused(url, "too_large", f"is over the {self.max_bytes:,}-byte cap")
                chunks.append(chunk)
            return b"".join(chunks)

    async def fetch(self, url: str, http: httpx.AsyncClient | None = None) -> CachedImage:
        """The image at ``url``: from the cache, a ``data:`` URI, or downloaded (retried on 5xx and network errors)."""
        cached = self.lookup(url)
        if cached is not None:
            return cached
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            if not header.startswith("data:image/") or ";base64" not in header:
                raise ImageRefused(url, "not_an_image", "is a data: URI that is not a base64 image")
            try:
                data = base64.b64decode(payload, validate=True)
            except binascii.Error:
                raise ImageRefused(url, "not_an_image", "is a data: URI with broken base64") from None
            return await asyncio.to_thread(self.store, url, data)
        owned = http is None
        # A client of its own: no Authorization header ever goes to the file host.
        http = http or httpx.AsyncClient(timeout=self.timeout, follow_redirects=True)
        try:
            for attempt in range(self.retries):
                try:
                    data = await self._download(http, url)
                    break
                except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                    if attempt + 1 >= self.retries:
                        raise ImageRefused(
                            url, "unreachable", f"could not be downloaded ({type(exc).__name__}: {exc})"
                        ) from None
                    await asyncio.sleep(0.25 * 2**attempt)
        finally:
            if owned:
                await http.aclose()
        self.downloads += 1
        return await asyncio.to_thread(self.store, url, data)

    async def fetch_all(self, urls: Sequence[str], concurrency: int = 6) -> list[CachedImage | ImageRefused]:
        """Every URL, ``concurrency`` at a time; refusals are returned in place, not raised."""
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as http:

            async def one(url: str) -> CachedImage | ImageRefused:
                async with gate:
                    try:
                        return await self.fetch(url, http)
                    except ImageRefused as exc:
                        return exc

            return list(await asyncio.gather(*(one(u) for u in urls)))

    # --- thumbnails --------------------------------------------------------------------------

    def thumbnail(self, image: CachedImage, size: int = 256) -> Path:
        """A JPEG no larger than ``size`` on its longer side, cached next to the originals."""
        path = self.directory / "thumbs" / image.sha256[:2] / f"{image.sha256}-{size}.jpg"
        if path.exists():
            return path
        with Image.open(image.path) as source:
            source.draft("RGB", (size, size))  # JPEG: decode at 1/2, 1/4 or 1/8 scale directly
            small = source.convert("RGB")
            small.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            buf = io.BytesIO()
            small.save(buf, format="JPEG", quality=85)
        self._atomic_write(path, buf.getvalue())
        return path
