"""Images on disk, kept by content hash: verified, written atomically, thumbnailed, within a size limit.

Originals live under their SHA-256 (``objects/``), small JPEG thumbnails next to them
(``thumbs/``), and an index maps each URL to its image (``urls/``). Bytes are checked before they
are kept (size cap, a readable image format, Pillow's decompression-bomb guard). Writers never
corrupt the store: names are content hashes and writes are atomic renames. Each use marks a file
used; past the size limit the least recently used go (``seqnb.images.limit``).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .._files import write_atomically
from ..errors import ImageRefused, SettingInvalid
from .limit import CacheUsage, PruneResult, cache_files, default_max_total_bytes, evict_lru, human_size

__all__ = [
    "FORMATS", "MAX_IMAGE_BYTES", "CachedImage", "ImageStore", "disk_refusal", "is_object", "jpeg_bytes", "verify_image",
]  # fmt: skip

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 50 * 1024 * 1024
"""The model pages recommend images of at most 50 MB."""


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

    def shrunk(self, size: int) -> Image.Image:
        """The image in RGB, no larger than ``size`` on its longer side (a JPEG decodes at a reduced scale, 1/2, 1/4
        or 1/8, directly)."""
        with Image.open(self.path) as source:
            source.draft("RGB", (size, size))
            small = source.convert("RGB")
        small.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return small


def jpeg_bytes(picture: Image.Image, quality: int = 85) -> bytes:
    """A Pillow image as JPEG bytes."""
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


FORMATS = ("jpeg", "png", "webp", "gif", "bmp", "tiff")
"""The image formats the store keeps."""
_SHA = re.compile(r"[0-9a-f]{64}")


def is_object(path: Path, sha256: str) -> bool:
    """Whether ``path`` (resolved) is where an image store keeps the image of hash ``sha256``:
    ``.../objects/<2 hex>/<sha256>.<image format>``. A ledger row naming any other file is not read."""
    ext = path.suffix.lstrip(".")
    return (
        _SHA.fullmatch(sha256) is not None
        and path.stem == sha256
        and path.parent.name == sha256[:2]
        and path.parent.parent.name == "objects"
        and ext in ("jpg", *FORMATS)
    )


def verify_image(url: str, data: bytes) -> tuple[str, int, int]:
    """Decode with Pillow's decompression-bomb guard on; returns (format, width, height) or raises ``ImageRefused``."""
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
    if fmt not in FORMATS:
        raise ImageRefused(url, "not_an_image", f"has unsupported image format {fmt!r}")
    return fmt, width, height


def disk_refusal(url: str, exc: OSError, directory: Path) -> ImageRefused:
    """The ``ImageRefused`` (reason ``disk``) of an image that could not be written into ``directory``."""
    code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    return ImageRefused(
        url,
        "disk",
        f"could not be saved in the image cache {directory} ({code}: {exc.strerror or exc}); "
        "free some disk space, or point $SEQNB_CACHE or ImageCache(directory=...) at a writable place",
    )


class ImageStore:
    """Content-addressed images in ``directory``: each at most ``max_bytes``, all together at most ``max_total_bytes``.

    ``max_total_bytes`` defaults to ``$SEQNB_CACHE_MAX_BYTES`` or 2 GiB.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, max_bytes: int = MAX_IMAGE_BYTES, max_total_bytes: int | None = None
    ) -> None:
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise SettingInvalid(
                f"image cache {str(self.directory)!r} is a file, not a folder: set SEQNB_CACHE (or directory=) to a "
                "folder, e.g. ~/.cache/seqnb/images"
            )
        self.max_bytes = max_bytes
        self.max_total_bytes = max_total_bytes if max_total_bytes is not None else default_max_total_bytes()
        self._total: int | None = None  # bytes held, known after the first scan, kept up by this process
        self._last_use_ns = 0

    # --- layout -----------------------------------------------------------------------------

    def _object(self, sha: str, ext: str) -> Path:
        return self.directory / "objects" / sha[:2] / f"{sha}.{ext}"

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

    def find(self, url: str | None, sha256: str | None = None) -> CachedImage | None:
        """A held image by its URL, else by its content hash (what a ledger row that missed its path may still know)."""
        found = self.lookup(url) if url else None
        if found is not None or not sha256 or not _SHA.fullmatch(sha256):
            return found
        for path in sorted((self.directory / "objects" / sha256[:2]).glob(f"{sha256}.*")):
            try:
                with Image.open(path) as img:
                    fmt, (width, height) = (img.format or "").lower(), img.size
                size = path.stat().st_size
            except Exception:  # not an image any more (or gone): as if not held
                continue
            if self._touch(path):
                return CachedImage(url or "", path, sha256, width, height, size, fmt)
        return None

    def _atomic_write(self, path: Path, data: bytes) -> None:
        write_atomically(path, data)
        self._touch(path)

    # --- storing ----------------------------------------------------------------------------

    def store(self, url: str, data: bytes) -> CachedImage:
        """Verify bytes and keep them under their hash, indexed by URL; ``ImageRefused`` (disk) if they cannot be written."""
        if len(data) > self.max_bytes:
            raise ImageRefused(url, "too_large", f"is {len(data):,} bytes, over the {self.max_bytes:,}-byte cap")
        fmt, width, height = verify_image(url, data)
        sha = hashlib.sha256(data).hexdigest()
        ext = {"jpeg": "jpg"}.get(fmt, fmt)
        path = self._object(sha, ext)
        record = {"sha256": sha, "ext": ext, "width": width, "height": height, "bytes": len(data), "format": fmt}
        try:
            if not self._touch(path):
                self._atomic_write(path, data)
                self._added(len(data), keep=path)
        except OSError as exc:
            raise disk_refusal(url, exc, self.directory) from None
        try:
            self._atomic_write(self._url_key(url), json.dumps(record).encode())
        except OSError as exc:  # the image is kept and shown; a later session downloads it again
            log.warning("image cache: %s not indexed (%s)", url if not url.startswith("data:") else "data: URI", exc)
        return CachedImage(url, path, sha, width, height, len(data), fmt)

    # --- thumbnails --------------------------------------------------------------------------

    def render_thumbnail(self, image: CachedImage, size: int) -> bytes:
        """JPEG bytes no larger than ``size`` on the longer side."""
        return jpeg_bytes(image.shrunk(size))

    def thumbnail(self, image: CachedImage, size: int = 256) -> Path:
        """A JPEG no larger than ``size`` on its longer side, cached next to the originals (marks both used)."""
        path = self.directory / "thumbs" / image.sha256[:2] / f"{image.sha256}-{size}.jpg"
        if self._touch(path):
            self._touch(image.path)
            return path
        data = self.render_thumbnail(image, size)
        self._atomic_write(path, data)
        self._added(len(data), keep=path)
        return path

    # --- size limit --------------------------------------------------------------------------

    def usage(self) -> CacheUsage:
        """Files, bytes and oldest/newest use of what the cache holds (originals and thumbnails)."""
        usage = CacheUsage.of(self.directory, cache_files(self.directory), self.max_total_bytes)
        self._total = usage.bytes
        return usage

    def _added(self, size: int, keep: Path) -> None:
        """Account for a file just written; past the limit, evict the least recently used (never ``keep``)."""
        if self._total is None:
            self._total = sum(f.size for f in cache_files(self.directory))
        else:
            self._total += size
        if self._total > self.max_total_bytes:
            removed, freed, self._total = evict_lru(self.directory, self.max_total_bytes, frozenset({keep}))
            if removed:
                log.info("image cache: evicted %d least recently used file(s), %s", removed, human_size(freed))

    def prune(self, max_bytes: int | None = None) -> PruneResult:
        """Evict least recently used files down to ``max_bytes`` (default: the limit); drop index entries of evicted images."""
        target = self.max_total_bytes if max_bytes is None else max_bytes
        removed, freed, self._total = evict_lru(self.directory, target)
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
