"""Files users upload to the emulator (local reference images), and reading a series' references.

RunComfy's Model API has no known upload route: with the emulator, ``POST /files`` keeps an image
and answers the URL serving it, so local files can be references in tests and demos. The
emulator reads references only from its own files or from loopback hosts, never the network.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from urllib.parse import urlsplit

import httpx

from .._netaddr import is_loopback

__all__ = ["MAX_UPLOAD_BYTES", "Uploads"]

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""The largest file ``POST /files`` takes (the pages' 50 MB for an input image)."""

_KEEP = 64
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}


class Uploads:
    """The uploaded files, by name (the most recent ``_KEEP``), and what a reference URL holds."""

    def __init__(self) -> None:
        self._files: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, data: bytes, media: str) -> str:
        """Keep a file; returns its name under ``/files/``."""
        name = "up-" + secrets.token_urlsafe(12) + _EXTENSIONS.get(media, ".bin")
        with self._lock:
            self._files[name] = (data, media)
            while len(self._files) > _KEEP:
                self._files.popitem(last=False)
        return name

    def get(self, name: str) -> tuple[bytes, str] | None:
        with self._lock:
            return self._files.get(name)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()

    def read(self, url: str, timeout: float = 5.0) -> bytes | None:
        """The bytes of a reference: an uploaded file (any host), or fetched from a loopback host; else None."""
        parts = urlsplit(url)
        name = parts.path.rsplit("/", 1)[-1]
        if parts.path.startswith("/files/") and (own := self.get(name)) is not None:
            return own[0]
        if parts.scheme not in ("http", "https") or not is_loopback(parts.hostname or ""):
            return None  # the emulator never reaches beyond this machine
        try:
            response = httpx.get(url, timeout=timeout, trust_env=False)
        except httpx.HTTPError:
            return None
        return response.content if response.status_code == 200 and len(response.content) <= MAX_UPLOAD_BYTES else None
