"""Reference images before any money is spent: local ones made inline PNGs within RunComfy's caps, URLs fetched.

A local file, a PIL image, bytes or an image data URI becomes a PNG (``inline``), as RunComfy's own
tools send references: at most 32 megapixels and 6 MiB, or a ``Problem`` naming it and the largest
size that fits. Its bytes are kept in the image cache under their hash, and a request holds their
stand-in (``seqnb.model.references``). A reference URL is fetched the way result images are
(``ImageCache.fetch``: no token, public hosts only unless allowed, every redirect hop checked),
within a deadline of its own. Each problem is a validation ``Problem`` on ``references`` that names
the reference and the fix. Fetched references stay in the image cache, so grids and scores use
them without a second download.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from ..errors import ImageRefused
from ..model.references import (
    INLINE_PREFIX,
    MAX_INLINE_BYTES,
    MAX_INLINE_PIXELS,
    StandIn,
    is_image_data_uri,
    is_local_path,
    largest_fitting,
)
from ..model.spec import MAX_REFERENCE_BYTES
from ..model.validation import Problem
from .cache import ImageCache
from .store import CachedImage

__all__ = ["Inline", "Uploader", "check_references", "inline", "local_path", "problem", "shown"]

Uploader = Callable[[Path], str]
"""The user's ``uploader``: a local file's path -> a public https URL serving it (a presigned URL, say)."""

_FIXES = {
    "blocked": "use a public https URL, or allow the host (ImageCache(allow_hosts=[...]) or SEQNB_ALLOW_IMAGE_HOSTS)",
    "invalid": "give an https URL of the image file, or the image itself (a local file, a PIL image or bytes)",
    "expired": "host the image again and pass its new URL",
    "unreachable": "check that the URL opens in a private browser window (the service fetches it without you)",
    "timeout": "host it somewhere faster, or allow more time with reference_deadline=",
    "not_an_image": "link the image file itself (PNG, JPEG, WebP), not a page about it",
    "bomb": "use a smaller image",
    "too_large": f"resize or recompress it under {MAX_REFERENCE_BYTES // 2**20} MB",
    "upload": "check the file and the uploader (it must return a public https URL serving the file)",
    "gone": "give the image again (the file, PIL image or bytes): seqnb keeps an inline image only in its image cache",
}
_HOST_IT = "or host it and pass its https URL (or give the client an uploader=)"


def problem(reference: str, detail: str, reason: str = "") -> Problem:
    """A problem of one reference, ``detail`` then the fix of ``reason`` (none when it is empty)."""
    fix = f": {_FIXES.get(reason, 'check the URL')}" if reason else ""
    return Problem("references", f"{reference} {detail}{fix}", code="type", wire="images")


def shown(reference: Any) -> str:
    """A reference as a message names it: a path or URL as given, the start of a data URI, the kind of an object."""
    if isinstance(reference, str):
        return reference if not reference.startswith("data:") or len(reference) <= 120 else reference[:40] + "..."
    if isinstance(reference, Path):
        return str(reference)
    if isinstance(reference, bytes | bytearray | memoryview):
        return f"the image bytes ({len(reference):,} bytes)"
    if isinstance(reference, Image.Image):
        return f"the PIL image ({reference.width}x{reference.height})"
    return f"the {type(reference).__name__}"


def local_path(reference: Any) -> Path | None:
    """The file a reference names (a path, ``file://`` or a ``Path``), else None."""
    if isinstance(reference, Path):
        return reference.expanduser()
    if isinstance(reference, str) and is_local_path(reference):
        return Path(reference.removeprefix("file://")).expanduser()
    return None


@dataclass(frozen=True)
class Inline:
    """A reference sent inline: its PNG bytes, and the stand-in a record keeps for it."""

    png: bytes
    stand_in: StandIn

    @property
    def data_uri(self) -> str:
        return INLINE_PREFIX + base64.b64encode(self.png).decode("ascii")


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _fitting_png(image: Image.Image, size: int) -> tuple[int, int]:
    """The largest width and height of ``image`` whose PNG is within ``MAX_INLINE_BYTES`` (found by encoding it)."""
    width, height = image.size
    per_pixel = size / (width * height)
    for _ in range(4):  # PNG bytes per pixel barely change with scale: this fits in one or two tries
        width, height = largest_fitting(width, height, MAX_INLINE_BYTES / per_pixel * 0.97)
        size = len(_png(image.resize((width, height), Image.Resampling.LANCZOS)))
        if size <= MAX_INLINE_BYTES:
            break
        per_pixel = size / (width * height)
    return width, height


def _decoded(reference: Any, name: str) -> Image.Image | Problem:
    """The image a local reference holds (a file, bytes, an image data URI, a PIL image), opened lazily."""
    if isinstance(reference, Image.Image):
        return reference
    data: bytes
    path = local_path(reference)
    if path is not None:
        if not path.is_file():
            return problem(name, "is no file here", "")
        try:
            data = path.read_bytes()
        except OSError as exc:
            return problem(name, f"cannot be read ({exc.strerror or exc})", "")
    elif isinstance(reference, str) and is_image_data_uri(reference):
        try:
            data = base64.b64decode(reference.partition(",")[2], validate=True)
        except binascii.Error:
            return problem(name, "is a data: URI with broken base64", "")
    elif isinstance(reference, bytes | bytearray | memoryview):
        data = bytes(reference)
    else:
        return problem(name, "is not a reference seqnb can send", "invalid")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the pixel cap below is stricter
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        return problem(name, f"has far more than {MAX_INLINE_PIXELS / 1e6:g} megapixels: resize it", "")
    except Exception as exc:
        return problem(name, f"is not an image Pillow can read ({type(exc).__name__}: {exc})", "")


def inline(reference: Any) -> Inline | Problem:
    """A local reference as the PNG RunComfy's tools would send, within their caps (32 megapixels, 6 MiB as PNG),
    else the problem naming it and how to shrink it. Its EXIF orientation is applied, its metadata left out.
    CPU-bound: run it in a worker thread."""
    name = shown(reference)
    image = _decoded(reference, name)
    if isinstance(image, Problem):
        return image
    width, height = image.size
    if width * height > MAX_INLINE_PIXELS:
        fit = "x".join(map(str, largest_fitting(width, height, MAX_INLINE_PIXELS)))
        return problem(
            name,
            f"is {width}x{height}, {width * height / 1e6:.1f} megapixels; an image sent inline may have at most "
            f"{MAX_INLINE_PIXELS / 1e6:g}: resize it to at most {fit}, {_HOST_IT}",
        )
    try:
        upright = ImageOps.exif_transpose(image)
        has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
        upright = upright.convert("RGBA" if has_alpha else "RGB")
        png = _png(upright)
    except Exception as exc:  # a truncated file, an unsupported mode: said, never raised
        return problem(name, f"is not an image Pillow can read ({type(exc).__name__}: {exc})", "")
    if len(png) > MAX_INLINE_BYTES:
        fit = "x".join(map(str, _fitting_png(upright, len(png))))
        return problem(
            name,
            f"is {len(png) / 2**20:.1f} MiB as PNG ({upright.width}x{upright.height}); an image sent inline may be at "
            f"most {MAX_INLINE_BYTES // 2**20} MiB as PNG: resize it to about {fit}, {_HOST_IT}",
        )
    return Inline(png, StandIn(hashlib.sha256(png).hexdigest(), upright.width, upright.height))


async def _check_one(cache: ImageCache, url: str, allow: Iterable[str], deadline: float) -> CachedImage | Problem:
    try:
        async with asyncio.timeout(deadline):
            image = await cache.fetch(url, allow=allow)
    except ImageRefused as exc:
        detail = str(exc).partition(": ")[2] or str(exc)
        return problem(url, detail, exc.reason)
    except TimeoutError:
        return problem(url, f"did not arrive within the {deadline:g} s allowed for a reference", "timeout")
    if image.bytes > MAX_REFERENCE_BYTES:
        return problem(url, f"is {image.bytes:,} bytes, over the {MAX_REFERENCE_BYTES:,}-byte limit", "too_large")
    return image


async def check_references(
    urls: Sequence[str], cache: ImageCache, *, allow: Iterable[str] = (), deadline: float = 30.0
) -> tuple[dict[str, CachedImage], dict[str, Problem]]:
    """Fetch every reference (each within ``deadline`` seconds; an inline one's stand-in from the cache): the images
    found, and the problem of each that failed."""
    unique = list(dict.fromkeys(urls))
    allowed = list(allow)
    results = await asyncio.gather(*(_check_one(cache, url, allowed, deadline) for url in unique))
    found = {url: r for url, r in zip(unique, results, strict=True) if isinstance(r, CachedImage)}
    return found, {url: r for url, r in zip(unique, results, strict=True) if isinstance(r, Problem)}
