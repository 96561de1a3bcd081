"""References as a request carries them, without I/O: URLs, inline PNG data URIs, and what a record keeps for one.

RunComfy's own tools send a reference image inline, as a PNG data URI (``data:image/png;base64,...``)
in the JSON body: each image at most ``MAX_INLINE_PIXELS`` and ``MAX_INLINE_BYTES`` as PNG, the
whole body at most ``MAX_REQUEST_BYTES``. seqnb does the same with a local file, a PIL image or
bytes, but a request, the ledger and every provenance hold the *stand-in* of such an image instead
of its bytes: ``data:image/png;sha256=<hex>,<width>x<height>``, the SHA-256 of the PNG bytes, which
the image cache keeps under that hash. The data URI itself is made again from the cache when the
request is sent (``seqnb.client.references``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "INLINE_PREFIX",
    "MAX_INLINE_BYTES",
    "MAX_INLINE_PIXELS",
    "MAX_REQUEST_BYTES",
    "StandIn",
    "inline_length",
    "is_image_data_uri",
    "is_local_path",
    "is_single",
    "largest_fitting",
    "reference_name",
]

MAX_INLINE_PIXELS = 32_000_000
"""The most pixels an inline reference may have (32 megapixels, as RunComfy's own tools check)."""
MAX_INLINE_BYTES = 6 * 1024 * 1024
"""The largest inline reference, as PNG bytes (6 MiB, as RunComfy's own tools check)."""
MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""The largest request body (64 MiB, the cap of RunComfy's own tools), inline references included."""
INLINE_PREFIX = "data:image/png;base64,"
"""How an inline reference starts on the wire."""

_IMAGE_DATA = re.compile(r"data:image/[a-z0-9.+-]+(;[a-z0-9-]+=[^;,]*)*;base64,", re.IGNORECASE)
_STAND_IN = re.compile(r"data:image/png;sha256=([0-9a-f]{64}),([1-9][0-9]{0,5})x([1-9][0-9]{0,5})")


def is_single(value: Any) -> bool:
    """Whether ``value`` is one reference (a string, a path, bytes, a PIL image...) rather than a collection of them."""
    return isinstance(value, str | bytes | bytearray | memoryview | os.PathLike) or not isinstance(value, Iterable)


def is_local_path(reference: str) -> bool:
    """Whether a reference string names a local file (a path or ``file://``) rather than a URL or a data URI."""
    return reference.startswith("file://") or ("://" not in reference and not reference.startswith("data:"))


def is_image_data_uri(reference: str) -> bool:
    """Whether a reference is a base64 data URI of an image (``data:image/png;base64,...``, any image type)."""
    return _IMAGE_DATA.match(reference[:200]) is not None


@dataclass(frozen=True)
class StandIn:
    """What a record keeps for an inline reference: the SHA-256 of its PNG bytes, its width and height."""

    sha256: str
    width: int
    height: int

    def __str__(self) -> str:
        return f"data:image/png;sha256={self.sha256},{self.width}x{self.height}"

    @classmethod
    def parse(cls, reference: Any) -> StandIn | None:
        """The stand-in a reference string is, or None when it is none."""
        found = _STAND_IN.fullmatch(reference) if isinstance(reference, str) else None
        return cls(found[1], int(found[2]), int(found[3])) if found else None


def inline_length(png_bytes: int) -> int:
    """The length of the data URI of a PNG of ``png_bytes`` bytes (what it adds to the request body)."""
    return len(INLINE_PREFIX) + 4 * math.ceil(png_bytes / 3)


def largest_fitting(width: int, height: int, pixels: float) -> tuple[int, int]:
    """The largest width and height of the same shape within ``pixels`` pixels."""
    scale = math.sqrt(pixels / (width * height))
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


def reference_name(reference: Any) -> str:
    """A reference in a few characters, for labels: the last part of a URL's path, or ``png 640x480 #1a2b3c4d``."""
    stand_in = StandIn.parse(reference)
    if stand_in is not None:
        return f"png {stand_in.width}x{stand_in.height} #{stand_in.sha256[:8]}"
    return str(reference).rsplit("/", 1)[-1][:30]
