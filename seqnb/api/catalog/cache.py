"""Catalog entries on disk for a day, so a new session prices without asking the catalog again.

The file is ``catalog_cache_path()``: ``$SEQNB_CATALOG_CACHE``, else ``catalog.json`` in
``$SEQNB_CACHE``, else ``~/.cache/seqnb/catalog.json``. Entries are keyed by API base and model
id, only fresh ones are kept, and the file is written atomically; a cache that cannot be written
is a ``CatalogWarning``, never an error.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ...errors import SettingInvalid
from .entry import TTL, CatalogEntry, CatalogWarning

__all__ = ["CatalogCache", "catalog_cache_path"]


def catalog_cache_path() -> Path:
    """``$SEQNB_CATALOG_CACHE``, else ``catalog.json`` in ``$SEQNB_CACHE``, else ``~/.cache/seqnb/catalog.json``."""
    if os.environ.get("SEQNB_CATALOG_CACHE"):
        return Path(os.environ["SEQNB_CATALOG_CACHE"]).expanduser()
    if os.environ.get("SEQNB_CACHE"):
        return Path(os.environ["SEQNB_CACHE"]).expanduser() / "catalog.json"
    return Path.home() / ".cache" / "seqnb" / "catalog.json"


class CatalogCache:
    """Catalog entries on disk, one JSON file, keyed by API base and model id; only fresh ones are kept."""

    VERSION = 1

    def __init__(self, path: str | os.PathLike[str] | None = None, ttl: float = TTL) -> None:
        self.path = Path(path) if path is not None else catalog_cache_path()
        if self.path.is_dir():
            raise SettingInvalid(
                f"catalog cache {str(self.path)!r} is a folder: set SEQNB_CATALOG_CACHE to a file, "
                "e.g. ~/.cache/seqnb/catalog.json"
            )
        self.ttl = ttl
        self._lock = threading.Lock()

    @staticmethod
    def key(api_base: str, model_id: str) -> str:
        return f"{api_base.rstrip('/')} {model_id}"

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if (
            not isinstance(data, dict)
            or data.get("version") != self.VERSION
            or not isinstance(data.get("entries"), dict)
        ):
            return {}
        return dict(data["entries"])

    def get(self, api_base: str, model_id: str, now: float | None = None) -> CatalogEntry | None:
        """The fresh entry for this model from this API, or None."""
        record = self._read().get(self.key(api_base, model_id))
        if not isinstance(record, dict):
            return None
        try:
            fetched_at = float(record["fetched_at"])
            entry = CatalogEntry.from_json(record["entry"], api_base=api_base, fetched_at=fetched_at)
        except (KeyError, TypeError, ValueError):
            return None
        return entry if entry.fresh(time.time() if now is None else now, self.ttl) else None

    def put(self, entries: Iterable[CatalogEntry]) -> None:
        """Add entries (dropping the stale ones); a cache that cannot be written is skipped, with a warning."""
        now = time.time()
        with self._lock:
            kept = {
                k: v
                for k, v in self._read().items()
                if isinstance(v, dict)
                and isinstance(v.get("fetched_at"), int | float)
                and now - v["fetched_at"] < self.ttl
            }
            for entry in entries:
                kept[self.key(entry.api_base, entry.model_id)] = {
                    "fetched_at": entry.fetched_at,
                    "entry": dict(entry.raw),
                }
            data = json.dumps({"version": self.VERSION, "entries": kept}, sort_keys=True).encode()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-catalog-")
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                    os.replace(tmp, self.path)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
            except OSError as exc:
                warnings.warn(
                    f"the catalog cache {self.path} cannot be written ({exc.strerror or exc}); prices are read "
                    "again next session. Set SEQNB_CATALOG_CACHE to a writable file",
                    CatalogWarning,
                    stacklevel=3,
                )
