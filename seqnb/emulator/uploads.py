"""Files users upload to the emulator (local reference images), and reading a series' references.

RunComfy's Model API has no known upload route: with the emulator, ``POST /files`` keeps an image
and answers the URL serving it, so local files can be references in tests and demos. The
emulator reads references only from its own uploaded files: it fetches no URL at all, so a
reference can never make it call the network, loopback or a private address (another service
on this machine, a router's admin page).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from urllib.parse import urlsplit

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

    def __len__(self) -> int:
        """How many uploaded files are kept."""
        with self._lock:
            return len(self._files)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()

    def read(self, url: str) -> bytes | None:
        """The bytes of a reference when it is one of the uploaded files (named by its ``/files/`` path), else None."""
        path = urlsplit(url).path
        if not path.startswith("/files/"):
            return None
        own = self.get(path.rsplit("/", 1)[-1])
        return own[0] if own is not None else None
