"""Series to hand over: runs with their frames and ledger rows, from a ledger or from a gallery (no widgets, no HTML).

The report and the export both start here. A series' frames come from the image cache the ledger
or the gallery names (a frame the ledger's row missed is found in the cache by its URL or hash);
a frame whose file is gone is a placeholder saying why, never an error. Nothing here reads or keeps a
token; paths are used to read images and never handed on. A ledger row's path is read only when it is
an image cache's file of that row's hash (``cached_path``: ``.../objects/ab/<sha256>.png``, symlinks
resolved): a row naming any other file (anyone on a team may write one) is a frame with no image, and a
note in the log.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..runs.run import RunCore
from .render import Frame
from .store import CachedImage, ImageStore, is_object

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.facade import Ledger

__all__ = ["OUTSIDE", "Series", "cached_path", "from_gallery", "from_ledger", "plain"]

log = logging.getLogger(__name__)

OUTSIDE = "the ledger names a file that is not in an image cache: not read"
"""The reason of a frame whose ledger row names a file elsewhere than in an image cache."""

ROW_FIELDS = (
    "status", "est_cost", "currency", "returned", "consistency", "note", "tags", "user", "host", "created_at",
    "finished_at", "error", "sweep_id", "backend", "verdict", "marks",
)  # fmt: skip
"""The ledger columns a series carries (``verdict``/``marks`` when the ledger has them)."""


@dataclass(frozen=True)
class Series:
    """One run to show or export: the run, its frames in order, its score and its ledger row (plain values)."""

    run: RunCore
    frames: list[Frame]
    score: float | None = None
    row: dict[str, Any] = field(default_factory=dict)


def plain(value: Any) -> Any:
    """A JSON-ready value of a frame cell: None for missing, str for times and the rest, numbers as numbers."""
    if value is None:
        return None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "strftime"):  # a time: to the second, in UTC as the ledger keeps it
        return str(value.strftime("%Y-%m-%d %H:%M:%S UTC" if getattr(value, "tzinfo", None) else "%Y-%m-%d %H:%M:%S"))
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


def _rows(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    records: list[dict[Any, Any]] = frame.to_dict("records")
    return {str(r["id"]): {k: plain(r[k]) for k in ROW_FIELDS if k in r} for r in records}


def cached_path(path: str, sha256: str) -> Path | None:
    """``path`` resolved, when it is an image cache's file of the image ``sha256`` (``store.is_object``); else None."""
    try:
        found = Path(path).resolve()
        return found if is_object(found, sha256) and found.is_file() else None
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL in the name
        return None


def _frame(cache: ImageStore, run: RunCore, i: int, row: dict[Any, Any] | None) -> Frame:
    """Frame ``i`` of a run from its ledger image row (None: no row). A row of state ``cached`` is read only when it
    names an image cache's file of its hash: one naming any other file is a "no image" frame."""
    held = _held(cache, run, i, row)
    if held is not None:
        return Frame(i, run.requested, held)
    if row is None:
        if run.status == "completed" and i >= len(run.images):
            return Frame(i, run.requested, None, "not_returned")
        return Frame(i, run.requested, None, "evicted", "not downloaded")
    recorded = str(plain(row.get("state")) or "cached")
    if recorded == "cached":
        path, sha = str(plain(row.get("path")) or ""), str(plain(row.get("sha256")) or "")
        found = cached_path(path, sha) if path else None
        if found is None:
            with contextlib.suppress(OSError, ValueError):
                if Path(path).exists():
                    log.warning("frame %d of run %r: %s (%s)", i + 1, run.id, OUTSIDE, path)
                    return Frame(i, run.requested, None, "outside", OUTSIDE)
        else:
            with contextlib.suppress(TypeError, ValueError):  # a row that says no size: not an image seqnb recorded
                size = int(row["width"]), int(row["height"]), int(row["bytes"])
                url = str(plain(row.get("url")) or "")
                return Frame(i, run.requested, CachedImage(url, found, sha, *size, found.suffix.lstrip(".").lower()))
    state, _, reason = recorded.partition(": ")
    if state == "cached":
        state, reason = "evicted", "no longer in the image cache"
    return Frame(i, run.requested, None, state, reason)


def _held(cache: ImageStore, run: RunCore, index: int, row: dict[Any, Any] | None) -> CachedImage | None:
    """A frame the image cache holds although its row does not say so (a row written before its image was fetched,
    or missed in an outage): found by the run's URL, else by the hash the row recorded."""
    recorded = row is not None and plain(row.get("state")) == "cached" and plain(row.get("path"))
    if recorded and Path(str(recorded)).exists():
        return None  # the row says where it is
    url = plain(row.get("url")) if row is not None else None
    url = url or (run.images[index] if index < len(run.images) else None)
    sha = plain(row.get("sha256")) if row is not None else None
    return cache.find(str(url) if url else None, str(sha) if sha else None)


def from_ledger(ledger: Ledger, frame: pd.DataFrame) -> list[Series]:
    """The series of the runs in ``frame`` (rows of ``ledger.runs``), their frames from the ledger's image rows, or
    from the image cache (``$SEQNB_CACHE``) where a row missed what the cache holds."""
    from .cache import default_cache_dir

    store = ImageStore(default_cache_dir())
    rows = _rows(frame)
    out = []
    for run_id, row in rows.items():
        run = ledger.restore(run_id)
        score = row.get("consistency")
        by_index = {int(r["idx"]): r for r in ledger.images(run_id).to_dict("records")}
        frames = [_frame(store, run, i, by_index.get(i)) for i in range(run.requested)]
        out.append(Series(run, frames, score, row))
    return out


class FrameSource(Protocol):
    """What ``from_gallery`` asks of a gallery (``seqnb.images.gallery.Gallery``, which hands series out through here)."""

    def frames(self, run: RunCore) -> list[Frame]: ...
    def score(self, run: RunCore) -> float | None: ...


def from_gallery(gallery: FrameSource, runs: Sequence[RunCore], frame: pd.DataFrame | None = None) -> list[Series]:
    """The series of ``runs`` with the gallery's frames (downloaded if need be) and, when given, their ledger rows."""
    rows = _rows(frame) if frame is not None else {}
    out = []
    for run in runs:
        frames = gallery.frames(run)
        row = rows.get(run.id) or {"status": run.status, "returned": run.returned, "note": run.note or None}
        out.append(Series(run, frames, gallery.score(run), row))
    return out
