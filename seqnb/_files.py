"""Writing a file whole or not at all, for every layer that keeps files (the image cache, the catalog cache)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, data: bytes, prefix: str = ".tmp-") -> None:
    """Write ``data`` to a temporary file beside ``path`` (named ``prefix...``) and rename it over ``path``, making its
    folder first: a reader sees the old file or the new one, never half of one; ``OSError`` when it cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
