"""The image cache's size limit: how it is set, what the cache holds against it, and eviction past it.

The limit (``$SEQNB_CACHE_MAX_BYTES``, 2 GiB by default) counts originals and thumbnails
together; past it the least recently used files go first. Recency is each file's mtime, set on
every use (atime is unreliable on noatime/relatime mounts), so it survives restarts and is shared
by every process using the directory. Eviction tolerates files that another process removed
first, and a half-written ``.tmp-`` file left by a writer that died is removed when found.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..errors import SettingInvalid

__all__ = [
    "DEFAULT_MAX_TOTAL_BYTES",
    "MAX_BYTES_ENV",
    "STALE_TEMP_SECONDS",
    "CacheFile",
    "CacheUsage",
    "PruneResult",
    "cache_files",
    "default_max_total_bytes",
    "evict_lru",
    "human_size",
    "parse_size",
    "size_setting",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_TOTAL_BYTES = 2 * 1024**3
"""The cache's default size limit (originals and thumbnails): 2 GiB."""

MAX_BYTES_ENV = "SEQNB_CACHE_MAX_BYTES"
STALE_TEMP_SECONDS = 3600.0
"""A half-written ``.tmp-`` file older than this belongs to a writer that died; prune removes it."""

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str, name: str = "size") -> int:
    """Bytes from ``"2147483648"``, ``"500M"``, ``"2G"``, ``"1.5GiB"`` (K/M/G/T are powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise SettingInvalid(f"{name} {text!r} is not a size: write bytes or a number with K, M, G or T (e.g. 2G)")
    number, unit, _ = match.groups()
    return int(float(number) * 1024 ** "_KMGT".index(unit.upper() or "_"))


def size_setting(env: str, default: int) -> int:
    """The size ``$env`` says (``parse_size``) when set, else ``default``."""
    text = os.environ.get(env, "").strip()
    return parse_size(text, f"${env}") if text else default


def default_max_total_bytes() -> int:
    """``$SEQNB_CACHE_MAX_BYTES`` when set, else 2 GiB."""
    return size_setting(MAX_BYTES_ENV, DEFAULT_MAX_TOTAL_BYTES)


def human_size(n: float) -> str:
    """``512 B``, ``1.5 KiB`` ... ``2.0 GiB``."""
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


@dataclass(frozen=True)
class CacheFile:
    """One original or thumbnail in the cache: its size and when it was last used."""

    path: Path
    size: int
    used_ns: int


@dataclass(frozen=True)
class CacheUsage:
    """What the cache holds: files (originals and thumbnails), their bytes, and when the oldest and newest were used."""

    directory: Path
    files: int
    bytes: int
    limit: int
    oldest: datetime | None
    newest: datetime | None

    @classmethod
    def of(cls, directory: Path, files: Collection[CacheFile], limit: int) -> CacheUsage:
        times = [f.used_ns for f in files]
        return cls(
            directory,
            len(files),
            sum(f.size for f in files),
            limit,
            datetime.fromtimestamp(min(times) / 1e9) if times else None,
            datetime.fromtimestamp(max(times) / 1e9) if times else None,
        )

    def lines(self) -> list[str]:
        """The lines ``seqnb cache`` prints."""

        def when(t: datetime | None) -> str:
            return t.isoformat(sep=" ", timespec="seconds") if t else "-"

        return [
            f"cache: {self.directory}",
            f"files: {self.files}",
            f"size: {human_size(self.bytes)} of {human_size(self.limit)} ({self.bytes:,} bytes, limit {self.limit:,})",
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
        return [f"removed {self.removed} file(s), freed {human_size(self.freed)}", *self.usage.lines()]


def cache_files(directory: Path) -> list[CacheFile]:
    """Every original and thumbnail under ``directory``, with its size and last use; removes stale half-written files."""
    found: list[CacheFile] = []
    stale_before = time.time_ns() - int(STALE_TEMP_SECONDS * 1e9)
    for kind in ("objects", "thumbs"):
        try:
            shards = [d.path for d in os.scandir(directory / kind) if d.is_dir()]
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
                found.append(CacheFile(Path(entry.path), st.st_size, st.st_mtime_ns))
    return found


def evict_lru(directory: Path, target: int, keep: frozenset[Path] = frozenset()) -> tuple[int, int, int]:
    """Remove least recently used files until at most ``target`` bytes remain; (files removed, bytes freed, bytes left)."""
    files = sorted(cache_files(directory), key=lambda f: (f.used_ns, str(f.path)))
    total = sum(f.size for f in files)
    removed = freed = 0
    for file in files:
        if total <= target:
            break
        if file.path in keep:
            continue
        try:
            file.path.unlink()
            removed += 1
            freed += file.size
        except FileNotFoundError:
            pass  # another process evicted it first
        except OSError as exc:
            log.warning("image cache: cannot remove %s (%s)", file.path, exc)
            continue
        total -= file.size
    return removed, freed, total
