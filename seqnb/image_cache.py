"""The image cache: result images downloaded without the API token, verified, kept by content hash.

Result URLs expire, and on Binder the browser cannot reach a URL only the kernel can: images are
downloaded as soon as a run completes (with an HTTP client that never carries the API token),
checked (size cap, content type, decompression-bomb guard), written atomically and kept under
their SHA-256, with small JPEG thumbnails next to them.

Nothing waits forever and one bad URL never costs the others: each file has a total deadline
(``file_deadline``, against hosts that drip a byte at a time), each run another
(``run_deadline``), and every failure of one URL comes back as an ``ImageRefused`` with a
``reason`` in its place (see ``fetch_all``). Downloads go to public hosts only unless a host is
allowed (see ``seqnb.image_hosts``).

The cache has a size limit (``max_total_bytes``, ``$SEQNB_CACHE_MAX_BYTES``, 2 GiB by default),
originals and thumbnails together, and evicts the least recently used files past it. Recency is
each file's mtime, set on every use (atime is unreliable on noatime/relatime mounts), so it
survives restarts and is shared by every process using the directory. Writers never corrupt the
cache: names are content hashes, writes are atomic renames, and eviction tolerates files that
another process removed first.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import errno
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
from PIL import Image

from .errors import ImageRefused
from .image_hosts import HostBlocked, HostPolicy, InvalidImageURL, PublicOnlyTransport, check_url

__all__ = [
    "DEFAULT_MAX_TOTAL_BYTES",
    "MAX_IMAGE_BYTES",
    "CacheUsage",
    "CachedImage",
    "ImageCache",
    "ImageRefused",
    "PruneResult",
    "default_cache_dir",
    "parse_size",
]

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 50 * 1024 * 1024
"""The model pages recommend images of at most 50 MB."""

DEFAULT_MAX_TOTAL_BYTES = 2 * 1024**3
"""The cache's default size limit (originals and thumbnails): 2 GiB."""

MAX_BYTES_ENV = "SEQNB_CACHE_MAX_BYTES"
MAX_REDIRECTS = 5
STALE_TEMP_SECONDS = 3600.0
"""A half-written ``.tmp-`` file older than this belongs to a writer that died; prune removes it."""


def default_cache_dir() -> Path:
    """``$SEQNB_CACHE``, else ``~/.cache/seqnb/images``."""
    return Path(os.environ.get("SEQNB_CACHE") or Path.home() / ".cache" / "seqnb" / "images").expanduser()


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str, name: str = "size") -> int:
    """Bytes from ``"2147483648"``, ``"500M"``, ``"2G"``, ``"1.5GiB"`` (K/M/G/T are powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{name} {text!r} is not a size: write bytes or a number with K, M, G or T (e.g. 2G)")
    number, unit, _ = match.groups()
    return int(float(number) * 1024 ** "_KMGT".index(unit.upper() or "_"))


def _default_max_total() -> int:
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    return parse_size(text, f"${MAX_BYTES_ENV}") if text else DEFAULT_MAX_TOTAL_BYTES


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"  # pragma: no cover


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


@dataclass(frozen=True)
class CacheUsage:
    """What the cache holds: files (originals and thumbnails), their bytes, and when the oldest and newest were used."""

    directory: Path
    files: int
    bytes: int
    limit: int
    oldest: datetime | None
    newest: datetime | None

    def lines(self) -> list[str]:
        """The lines ``seqnb cache`` prints."""

        def when(t: datetime | None) -> str:
            return t.isoformat(sep=" ", timespec="seconds") if t else "-"

        return [
            f"cache: {self.directory}",
            f"files: {self.files}",
            f"size: {_human(self.bytes)} of {_human(self.limit)} ({self.bytes:,} bytes, limit {self.limit:,})",
            f"least recently used: {when(self.oldest)}",
            f"most recently used: {when(self.newest)}",
        ]


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed, and the cache after it."""

    removed: int
    freed: int
    usage: CacheUsage

    def lines(self) -> list[str]:
        return [f"removed {self.removed} file(s), freed {_human(self.freed)}", *self.usage.lines()]


@dataclass(frozen=True)
class _Entry:
    path: Path
    size: int
    used_ns: int


class ImageCache:
    """Content-addressed images on disk, downloaded without the API token, within deadlines and a size limit.

    ``timeout`` bounds each network operation (connect, one read); ``file_deadline`` the whole
    download of one file, retries included; ``run_deadline`` all the files of one ``fetch_all``.
    ``allow_hosts`` (``name`` or ``name:port``, added to ``$SEQNB_ALLOW_IMAGE_HOSTS``) may be
    reached although they are not public. ``max_total_bytes`` (default ``$SEQNB_CACHE_MAX_BYTES``
    or 2 GiB) is the cache's size limit.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int = MAX_IMAGE_BYTES,
        timeout: float = 30.0,
        retries: int = 3,
        file_deadline: float = 60.0,
        run_deadline: float = 180.0,
        concurrency: int = 6,
        allow_hosts: Iterable[str] = (),
        max_total_bytes: int | None = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.retries = retries
        self.file_deadline = file_deadline
        self.run_deadline = run_deadline
        self.concurrency = concurrency
        self.policy = HostPolicy.of(allow_hosts)
        self.max_total_bytes = max_total_bytes if max_total_bytes is not None else _default_max_total()
        self.downloads = 0
        self._total: int | None = None  # bytes held, known after the first scan, kept up by this process
        self._last_use_ns = 0

    # --- layout -----------------------------------------------------------------------------

    def _object(self, sha: str, ext: str) -> Path:
        return self.directory / "objects" / sha[:2] / f"{sha}.{ext}"

    def _thumb(self, sha: str, size: int) -> Path:
        return self.directory / "thumbs" / sha[:2] / f"{sha}-{size}.jpg"

    def _url_key(self, url: str) -> Path:
        key = hashlib.sha256(url.encode()).hexdigest()
        return self.directory / "urls" / key[:2] / key

    def _touch(self, path: Path) -> bool:
        """Mark a file used now (its mtime, strictly increasing in this process); False if it is gone."""
        now = max(time.time_ns(), self._last_use_ns + 1)
        self._last_use_ns = now
        try:
            os.utime(path, ns=(now, now))
        except FileNotFoundError:
            return False
        except OSError:  # a read-only cache still serves what it holds
            return path.exists()
        return True

    def lookup(self, url: str) -> CachedImage | None:
        """The cached image of a URL, if it was fetched before and is still held (marks it used)."""
        index = self._url_key(url)
        try:
            record = json.loads(index.read_text())
            path = self._object(record["sha256"], record["ext"])
            image = CachedImage(
                url, path, record["sha256"], record["width"], record["height"], record["bytes"], record["format"]
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return image if self._touch(path) else None

    def _atomic_write(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._touch(path)

    def _disk_refusal(self, url: str, exc: OSError) -> ImageRefused:
        code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        return ImageRefused(
            url,
            "disk",
            f"could not be saved in the image cache {self.directory} ({code}: {exc.strerror or exc}); "
            "free some disk space, or point $SEQNB_CACHE or ImageCache(directory=...) at a writable place",
        )

    # --- storing ----------------------------------------------------------------------------

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
        """Verify bytes and keep them under their hash, indexed by URL; ``ImageRefused`` (disk) if they cannot be written."""
        if len(data) > self.max_bytes:
            raise ImageRefused(url, "too_large", f"is {len(data):,} bytes, over the {self.max_bytes:,}-byte cap")
        fmt, width, height = self._verify(url, data)
        sha = hashlib.sha256(data).hexdigest()
        ext = {"jpeg": "jpg"}.get(fmt, fmt)
        path = self._object(sha, ext)
        record = {"sha256": sha, "ext": ext, "width": width, "height": height, "bytes": len(data), "format": fmt}
        try:
            if not self._touch(path):
                self._atomic_write(path, data)
                self._added(len(data), keep=path)
        except OSError as exc:
            raise self._disk_refusal(url, exc) from None
        try:
            self._atomic_write(self._url_key(url), json.dumps(record).encode())
        except OSError as exc:  # the image is kept and shown; a later session downloads it again
            log.warning("image cache: %s not indexed (%s)", url if not url.startswith("data:") else "data: URI", exc)
        return CachedImage(url, path, sha, width, height, len(data), fmt)

    # --- fetching ---------------------------------------------------------------------------

    def _client(self, allow: Iterable[str] = ()) -> httpx.AsyncClient:
        """An HTTP client of the cache's own: no Authorization header ever, public hosts only, few redirects."""
        return httpx.AsyncClient(
            transport=PublicOnlyTransport(self.policy.including(allow)),
            timeout=min(self.timeout, self.file_deadline),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            trust_env=False,
        )

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
            try:
                declared = int(response.headers.get("content-length") or 0)
            except ValueError:
                declared = 0
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

    def _from_data_uri(self, url: str) -> bytes:
        header, _, payload = url.partition(",")
        if not header.startswith("data:image/") or ";base64" not in header:
            raise ImageRefused(url, "not_an_image", "is a data: URI that is not a base64 image")
        try:
            return base64.b64decode(payload, validate=True)
        except binascii.Error:
            raise ImageRefused(url, "not_an_image", "is a data: URI with broken base64") from None

    async def _fetch(self, url: str, http: httpx.AsyncClient) -> CachedImage:
        cached = self.lookup(url)
        if cached is not None:
            return cached
        if url.startswith("data:"):
            return await asyncio.to_thread(self.store, url, self._from_data_uri(url))
        check_url(httpx.URL(url))  # a URL no download can come from fails here, before any network
        for attempt in range(self.retries):
            try:
                data = await self._download(http, url)
                break
            except (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError, httpx.HTTPStatusError):
                if attempt + 1 >= self.retries:
                    raise
                await asyncio.sleep(0.25 * 2**attempt)
        self.downloads += 1
        return await asyncio.to_thread(self.store, url, data)

    def _refusal(self, url: str, exc: BaseException) -> ImageRefused:
        """Any failure of one URL as the ``ImageRefused`` that stands in its place."""
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
                f"took longer than the {self.file_deadline:g} s allowed for one image; "
                "try again later, or allow more with ImageCache(file_deadline=...)",
            )
        if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError)):
            return ImageRefused(url, "invalid", f"is not a URL an image can be downloaded from ({exc})")
        if isinstance(exc, httpx.TooManyRedirects):
            return ImageRefused(url, "unreachable", f"redirects more than {MAX_REDIRECTS} times (a redirect loop?)")
        if isinstance(exc, (httpx.HTTPError, httpx.StreamError)):
            return ImageRefused(url, "unreachable", f"could not be downloaded ({type(exc).__name__}: {exc})")
        if isinstance(exc, OSError):
            return self._disk_refusal(url, exc)
        log.error("downloading %s failed unexpectedly", url, exc_info=exc)
        return ImageRefused(url, "error", f"failed unexpectedly ({type(exc).__name__}: {exc})")

    async def _fetch_within_deadline(self, url: str, http: httpx.AsyncClient) -> CachedImage:
        try:
            async with asyncio.timeout(self.file_deadline):
                return await self._fetch(url, http)
        except Exception as exc:  # ExceptionGroup included: one URL's failure is that URL's refusal
            raise self._refusal(url, exc) from None

    async def fetch(self, url: str, *, allow: Iterable[str] = ()) -> CachedImage:
        """The image at ``url``: from the cache, a ``data:`` URI, or downloaded (retried on 5xx and network errors).

        Every failure is an ``ImageRefused`` whose ``reason`` says which: expired, too_large,
        not_an_image, bomb, blocked, invalid, unreachable, timeout, disk (or error, for a bug).
        ``allow`` adds hosts that may be reached although not public, for this call.
        """
        (result,) = await self.fetch_all([url], allow=allow)
        if isinstance(result, ImageRefused):
            raise result
        return result

    async def fetch_all(
        self, urls: Sequence[str], concurrency: int | None = None, *, allow: Iterable[str] = ()
    ) -> list[CachedImage | ImageRefused]:
        """Every URL, ``concurrency`` at a time, within ``run_deadline``; never raises: each failure is returned in place."""
        results: list[CachedImage | ImageRefused | None] = [self.lookup(url) for url in urls]
        wanted = [i for i, found in enumerate(results) if found is None]
        if wanted:
            gate = asyncio.Semaphore(concurrency or self.concurrency)
            async with self._client(allow) as http:

                async def one(url: str) -> CachedImage:
                    async with gate:
                        return await self._fetch_within_deadline(url, http)

                tasks = {i: asyncio.create_task(one(urls[i])) for i in wanted}
                try:
                    await asyncio.wait(tasks.values(), timeout=self.run_deadline)
                finally:
                    for task in tasks.values():
                        task.cancel()  # those still running are past the run's deadline; a no-op for the others
                await asyncio.wait(tasks.values())
            for i, task in tasks.items():
                if task.cancelled():
                    results[i] = ImageRefused(
                        urls[i],
                        "timeout",
                        f"was not downloaded within the {self.run_deadline:g} s allowed for one run; "
                        "try again later, or allow more with ImageCache(run_deadline=...)",
                    )
                elif (error := task.exception()) is not None:
                    results[i] = self._refusal(urls[i], error)
                else:
                    results[i] = task.result()
        return [r for r in results if r is not None]

    # --- thumbnails --------------------------------------------------------------------------

    def render_thumbnail(self, image: CachedImage, size: int) -> bytes:
        """JPEG bytes no larger than ``size`` on the longer side (JPEG originals decode at a reduced scale)."""
        with Image.open(image.path) as source:
            source.draft("RGB", (size, size))  # JPEG: decode at 1/2, 1/4 or 1/8 scale directly
            small = source.convert("RGB")
            small.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
            buf = io.BytesIO()
            small.save(buf, format="JPEG", quality=85)
        return buf.getvalue()

    def thumbnail(self, image: CachedImage, size: int = 256) -> Path:
        """A JPEG no larger than ``size`` on its longer side, cached next to the originals (marks both used)."""
        path = self._thumb(image.sha256, size)
        if self._touch(path):
            self._touch(image.path)
            return path
        data = self.render_thumbnail(image, size)
        self._atomic_write(path, data)
        self._added(len(data), keep=path)
        return path

    # --- size limit --------------------------------------------------------------------------

    def _entries(self) -> list[_Entry]:
        """Every original and thumbnail, with its size and last use; removes stale half-written files."""
        found: list[_Entry] = []
        stale_before = time.time_ns() - int(STALE_TEMP_SECONDS * 1e9)
        for kind in ("objects", "thumbs"):
            try:
                shards = [d.path for d in os.scandir(self.directory / kind) if d.is_dir()]
            except OSError:
                continue
            for shard in shards:
                try:
                    files = list(os.scandir(shard))
                except OSError:
                    continue  # removed under us
                for entry in files:
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    if entry.name.startswith(".tmp-"):
                        if st.st_mtime_ns < stale_before:
                            Path(entry.path).unlink(missing_ok=True)
                        continue
                    found.append(_Entry(Path(entry.path), st.st_size, st.st_mtime_ns))
        return found

    def usage(self) -> CacheUsage:
        """Files, bytes and oldest/newest use of what the cache holds (originals and thumbnails)."""
        entries = self._entries()
        self._total = sum(e.size for e in entries)
        times = [e.used_ns for e in entries]
        return CacheUsage(
            self.directory,
            len(entries),
            self._total,
            self.max_total_bytes,
            datetime.fromtimestamp(min(times) / 1e9) if times else None,
            datetime.fromtimestamp(max(times) / 1e9) if times else None,
        )

    def _evict(self, target: int, keep: frozenset[Path] = frozenset()) -> tuple[int, int]:
        """Remove least recently used files until at most ``target`` bytes remain; (files, bytes) removed."""
        entries = sorted(self._entries(), key=lambda e: (e.used_ns, str(e.path)))
        total = sum(e.size for e in entries)
        removed = freed = 0
        for entry in entries:
            if total <= target:
                break
            if entry.path in keep:
                continue
            try:
                entry.path.unlink()
                removed += 1
                freed += entry.size
            except FileNotFoundError:
                pass  # another process evicted it first
            except OSError as exc:
                log.warning("image cache: cannot remove %s (%s)", entry.path, exc)
                continue
            total -= entry.size
        self._total = total
        return removed, freed

    def _added(self, size: int, keep: Path) -> None:
        """Account for a file just written; past the limit, evict the least recently used (never ``keep``)."""
        if self._total is None:
            self._total = sum(e.size for e in self._entries())
        else:
            self._total += size
        if self._total > self.max_total_bytes:
            removed, freed = self._evict(self.max_total_bytes, frozenset({keep}))
            if removed:
                log.info("image cache: evicted %d least recently used file(s), %s", removed, _human(freed))

    def prune(self, max_bytes: int | None = None) -> PruneResult:
        """Evict least recently used files down to ``max_bytes`` (default: the limit); drop index entries of evicted images."""
        removed, freed = self._evict(self.max_total_bytes if max_bytes is None else max_bytes)
        urls = self.directory / "urls"
        for index in urls.glob("*/*") if urls.is_dir() else ():
            if index.name.startswith(".tmp-"):
                continue  # a writer's, not yet renamed
            try:
                record = json.loads(index.read_text())
                gone = not self._object(record["sha256"], record["ext"]).exists()
            except FileNotFoundError:
                continue
            except (OSError, ValueError, KeyError, TypeError):
                gone = True  # an unreadable record is as good as none
            if gone:
                index.unlink(missing_ok=True)
        return PruneResult(removed, freed, self.usage())
