"""What the matrix widget is given (``runs_of``) and what it sends: one page as compact data (labels, cell states,
marks, the visible thumbnails).

Plain functions over ``seqnb.images.matrix`` and the image cache; ``MatrixView`` calls them and
tests read their output. ``SeriesView`` is what the matrix and the duel widgets share. Thumbnails are data URLs of the cache's JPEG thumbnails, made only for
the cells of the page, each with its own width and height (a 16:9 frame stays 16:9); a frame without
an image is sent as its state and label, drawn by the browser in the shape of its series.
"""

from __future__ import annotations

import asyncio
import base64
import html
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from ..client.core import AsyncRun
from ..images.fallback import StaticFallback
from ..images.matrix import Matrix, Page, axis_value, cell_labels, made_from
from ..images.render import Frame, frame_label
from ..images.store import CachedImage, ImageStore
from ..ledger.marks import RunMarks
from ..model.spec import get_model
from ..runs.run import ACTIVE, RunCore
from ..session import gallery_of

if TYPE_CHECKING:
    from ..images.gallery import Gallery
    from ..ledger.facade import Ledger

__all__ = [
    "SeriesView",
    "aspect_of",
    "downloads_itself",
    "image_bytes",
    "lightbox_info",
    "loop_running",
    "page_snapshot",
    "run_state",
    "runs_of",
    "thumb_src",
]

log = logging.getLogger(__name__)


class SeriesView(StaticFallback, anywidget.AnyWidget):
    """What the matrix and the duel share: the runs as given (``originals``), their gallery and ledger, their frames
    (read from the gallery once their images are in, else downloaded in the background on the running loop, then
    ``_frames_loaded()``), their thumbnails kept, and the browser's messages as plain calls (``handle_message``)."""

    noun = "view"
    """What the widget is called in what it says (``the matrix does not know the action ...``)."""
    large: int
    """The longer side of the frames sent full-size."""

    message = traitlets.Unicode("", help="the outcome of the last action, as HTML").tag(sync=True)

    def _given(self, runs: Any, gallery: Gallery | None, ledger: Ledger | None) -> tuple[list[RunCore], Ledger | None]:
        """Take in the runs asked for (``runs_of``); returns their states and the ledger given, else theirs."""
        self.originals: dict[str, Any] = {}
        """Run id -> the object given (a ``Run`` keeps its client)."""
        self.frames: dict[str, list[Frame]] = {}
        self._loading: set[str] = set()
        self._thumbs: dict[str, str] = {}
        """Image sha256 -> its thumbnail's data URL, so a series shown again reads no file."""
        self._closed = False
        cores = self._adopt(runs_of(runs, ledger))
        self.gallery = gallery or gallery_of(cores)
        return cores, ledger or self.gallery.ledger or client_ledger(cores)

    def _adopt(self, given: Iterable[Any]) -> list[RunCore]:
        """The states of the runs not yet in ``originals``, now in it."""
        cores = []
        for run in given:
            core = getattr(run, "aio", run)
            if not isinstance(core, RunCore):
                raise TypeError(f"a {self.noun} is made of runs (Run, AsyncRun), not {type(run).__name__}")
            if core.id not in self.originals:
                self.originals[core.id] = run
                cores.append(core)
        return cores

    def _frames_of(self, run: RunCore) -> list[Frame] | None:
        """The run's frames if its images are in; else fetched (in the background on a loop) and None for now."""
        if run.id in self.frames:
            return self.frames[run.id]
        if self.gallery.ready(run) or not loop_running():
            try:
                self.frames[run.id] = self.gallery.frames(run)
            except Exception as exc:  # that run's place says so; the others are drawn
                log.warning("frames of run %s not loaded: %s", run.id, exc)
                return None
            return self.frames[run.id]
        if not self._fetched_elsewhere(run) and run.id not in self._loading:
            self._loading.add(run.id)
            asyncio.get_running_loop().create_task(self._load(run))
        return None

    async def _load(self, run: RunCore) -> None:
        try:
            self.frames[run.id] = await self.gallery.download(run)
        except Exception as exc:
            log.warning("images of run %s not loaded: %s", run.id, exc)
        finally:
            self._loading.discard(run.id)
        self._frames_loaded()

    def _fetched_elsewhere(self, run: RunCore) -> bool:
        """Whether the run's images are on their way without this view asking for them."""
        return False

    def _frames_loaded(self) -> None:
        """Called after each download this view started, done or failed."""

    def _large(self, frame: Frame | None) -> bytes | None:
        """A frame's image at the ``large`` size (the widget's), to send as a custom message; None without one."""
        return image_bytes(self.gallery.cache, frame.image, self.large) if frame is not None else None

    def _act(self, action: Any, actions: dict[str, Callable[[], Any]]) -> Any:
        """Call the method a browser's message names; a bad argument or an unknown action is said in ``message``."""
        if action not in actions:
            self.message = f"the {self.noun} does not know the action {html.escape(str(action))!r}"
            return None
        try:
            return actions[action]()
        except (TypeError, ValueError) as exc:
            self.message = f"{html.escape(str(action))}: {html.escape(str(exc))}"
            return None

    def close(self) -> None:
        self._closed = True
        super().close()


def run_state(run: RunCore) -> tuple[str, str]:
    """What a cell says about its run: ``(state, words)``; state is completed, short, failed, running, queued or ended."""
    if run.status == "completed":
        if run.short:
            return "short", f"{len(run.images)} of {run.requested} returned"
        return "completed", ""
    if run.status == "failed":
        return "failed", run.error or "failed"
    if run.status in ACTIVE:
        return ("running", "running") if run.status == "in_progress" else ("queued", "queued")
    if run.status in ("created", "submitting"):
        return "queued", "not sent yet" if run.status == "created" else "sending"
    return "ended", run.status.replace("_", " ") + (f": {run.error}" if run.error else "")


_SIZE = re.compile(r"(\d+)\s*[x:]\s*(\d+)")


def aspect_of(run: RunCore, frames: Sequence[Frame] | None) -> float:
    """Width over height of a run's frames: its first image's, else its size option's (``2560:1440`` is 16:9), else 1."""
    for frame in frames or ():
        if frame.image is not None and frame.image.height > 0:
            return round(frame.image.width / frame.image.height, 4)
    found = _SIZE.search(str(run.request.resolved().get("size") or ""))
    if found and int(found.group(2)) > 0:
        return round(int(found.group(1)) / int(found.group(2)), 4)
    return 1.0


def fitted(aspect: float, size: int) -> tuple[int, int]:
    """Width and height of a frame of this aspect whose longer side is ``size`` (as the cache's thumbnails are)."""
    if aspect >= 1:
        return size, max(1, round(size / aspect))
    return max(1, round(size * aspect)), size


def image_bytes(store: ImageStore, image: CachedImage | None, size: int) -> bytes | None:
    """An image's cached JPEG thumbnail of ``size`` (made in memory when the cache cannot keep it), or None (no image, or
    it vanished from the cache)."""
    if image is None:
        return None
    try:
        return store.thumbnail(image, size).read_bytes()
    except OSError as exc:
        if not image.path.exists():
            return None
        log.warning("thumbnail of %s not cached (%s); made in memory", image.path, exc)
        return store.render_thumbnail(image, size)


def thumb_src(store: ImageStore, frame: Frame, size: int, memo: dict[str, str] | None = None) -> str | None:
    """The frame's cached thumbnail as a ``data:`` URL, or None (no image, or it vanished from the cache).

    ``memo`` (image sha256 -> URL) spares reading a thumbnail again for a page shown again.
    """
    if frame.image is None:
        return None
    if memo is not None and (known := memo.get(frame.image.sha256)) is not None:
        return known
    data = image_bytes(store, frame.image, size)
    if data is None:
        return None
    src = data_url(data)
    if memo is not None:
        memo[frame.image.sha256] = src
    return src


def data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _frames_entry(
    store: ImageStore,
    run: RunCore,
    frames: Sequence[Frame] | None,
    marks: RunMarks,
    size: int,
    memo: dict[str, str] | None,
) -> list[Any]:
    if frames is None:
        return [{"i": i, "state": "waiting", "label": ""} for i in range(run.requested)]
    out = []
    for frame in frames:
        src = thumb_src(store, frame, size, memo)
        entry: dict[str, Any] = {"i": frame.index, "state": frame.state if src or frame.image is None else "evicted"}
        if src and frame.image is not None:
            entry["src"] = src
            entry["w"], entry["h"] = fitted(frame.image.width / max(1, frame.image.height), size)
        else:
            entry["label"] = frame_label(Frame(frame.index, frame.count, None, entry["state"]))
            entry["reason"] = frame.reason
        if rating := marks.frame_ratings.get(frame.index):
            entry["rating"] = rating
        out.append(entry)
    return out


def run_entry(
    store: ImageStore,
    run: RunCore,
    frames: Sequence[Frame] | None,
    marks: RunMarks,
    size: int,
    label: str = "",
    memo: dict[str, str] | None = None,
    parent: RunCore | None = None,
) -> dict[str, Any]:
    """One run of a cell: state, marks, its frames in order (thumbnails only once its images are in) and their aspect;
    for a run made from another of the cell (``parent``), how (``promoted``, ``rerun``) and from which."""
    state, words = run_state(run)
    if state in ("completed", "short") and frames is None:
        state, words = "loading", "images loading"
    return {
        "id": run.id,
        "status": run.status,
        "state": state,
        "words": words,
        "label": label,
        "requested": run.requested,
        "rating": marks.rating or 0,
        "verdict": marks.verdict or "none",
        "tags": list(marks.tags),
        "title": run.label or "",
        "made": made_from(run, parent),
        "parent": parent.id if parent is not None else "",
        "aspect": aspect_of(run, frames),
        "frames": _frames_entry(store, run, frames if state not in ("failed", "ended") else [], marks, size, memo),
    }


def page_snapshot(
    matrix: Matrix,
    page: Page,
    *,
    store: ImageStore,
    frames: Mapping[str, Sequence[Frame] | None],
    marks: Mapping[str, RunMarks],
    size: int,
    page_rows: int,
    page_cols: int,
    picked: int,
    thumbs: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The page as the browser draws it: axes, headers, one entry per cell (a list of runs), and counts (the picks of
    each facet too, so that a pick in another table is found again)."""
    placed = (matrix.rows_axis, matrix.cols_axis, matrix.facet_axis)
    picked_in: dict[int, int] = {}
    if matrix.facet_axis:
        for run_id, mark in marks.items():
            where = matrix.locate(run_id) if mark.verdict == "picked" else None
            if where is not None:
                picked_in[where[0]] = picked_in.get(where[0], 0) + 1

    def entries(cell: Sequence[RunCore]) -> list[dict[str, Any]]:
        by_id = {r.id: r for r in cell}
        out = []
        for run, label in zip(cell, cell_labels(cell, placed, matrix.parents), strict=True):
            parent = by_id.get(matrix.parents.get(run.id, ""))
            mark = marks.get(run.id, RunMarks())
            out.append(run_entry(store, run, frames.get(run.id), mark, size, label, thumbs, parent))
        return out

    return {
        "axes": {
            "rows": matrix.rows_axis,
            "cols": matrix.cols_axis,
            "facet": matrix.facet_axis,
            "offered": list(matrix.varying),
            "unplaced": matrix.unplaced(),
        },
        "page": {
            "row_page": page.row_page,
            "col_page": page.col_page,
            "row_pages": page.row_pages,
            "col_pages": page.col_pages,
            "facet": page.facet,
            "rows": page_rows,
            "cols": page_cols,
        },
        "facets": [
            {"label": h.label, "title": h.title, "picked": picked_in.get(i, 0)} for i, h in enumerate(matrix.facets)
        ]
        if matrix.facet_axis
        else [],
        "rows": [{"label": matrix.rows[i].label, "title": matrix.rows[i].title} for i in page.rows],
        "cols": [{"label": matrix.cols[i].label, "title": matrix.cols[i].title} for i in page.cols],
        "cells": [[entries(cell) for cell in row] for row in page.cells],
        "total": {
            "runs": len(matrix.runs),
            "made": len(matrix.parents),
            "rows": len(matrix.rows),
            "cols": len(matrix.cols),
            "picked": picked,
        },
        "size": size,
    }


def where_in(matrix: Matrix, run: RunCore) -> str:
    """Where a run sits, in the words of the headers: ``seedream-4.0 · …ink drawing · seed 2`` (and what a run made
    from another changed)."""
    found = matrix.locate(run.id)
    if found is None:
        return ""
    facet, row, col = found
    cell = matrix.cell(row, col, facet)
    placed = (matrix.rows_axis, matrix.cols_axis, matrix.facet_axis)
    own = dict(zip((r.id for r in cell), cell_labels(cell, placed, matrix.parents), strict=True)).get(run.id, "")
    heads = [matrix.facets[facet], matrix.rows[row], matrix.cols[col]]
    return " · ".join(h for h in [*(h.label for h in heads), own] if h)


def lightbox_info(
    run: RunCore, frame: int, marks: RunMarks, frames: Sequence[Frame] | None, matrix: Matrix | None = None
) -> dict[str, Any]:
    """What the lightbox says beside the image: where the run sits, prompt, seed, size, model, cost, run id, state and
    marks (and, for a run made from another, which)."""
    resolved = run.request.resolved()
    prices = run.client.prices if isinstance(run, AsyncRun) and run.bound else None
    try:
        cost = str(run.request.cost(prices))
    except (ValueError, KeyError):
        cost = ""
    known = frames[frame] if frames is not None and 0 <= frame < len(frames) else None
    state, words = run_state(run)
    parent = matrix.find(matrix.parents[run.id]) if matrix is not None and run.id in matrix.parents else None
    return {
        "open": True,
        "run": run.id,
        "frame": frame,
        "count": run.requested,
        "where": where_in(matrix, run) if matrix is not None else "",
        "label": run.label or "",
        "made": made_from(run, parent),
        "parent": parent.id if parent is not None else "",
        "aspect": aspect_of(run, frames),
        "prompt": run.request.prompt or "",
        "seed": "random" if axis_value(run, "seed") is None else str(axis_value(run, "seed")),
        "size": str(resolved.get("size") or ""),
        "model": get_model(run.model).short_name,
        "optimize": str(resolved.get("optimize") or ""),
        "cost": cost,
        "status": run.status,
        "state": state,
        "words": words,
        "frame_state": known.state if known else ("waiting" if frames is None else "not_returned"),
        "frame_label": frame_label(known) if known and known.image is None else "",
        "pixels": f"{known.image.width}x{known.image.height}" if known and known.image else "",
        "rating": marks.rating or 0,
        "frame_rating": marks.frame_ratings.get(frame, 0),
        "verdict": marks.verdict or "none",
        "tags": list(marks.tags),
        "comment": marks.comment or "",
    }


def runs_of(runs: Any, ledger: Ledger | None = None) -> list[Any]:
    """The runs a matrix is asked for: a list of runs, a ``Sweep``, a frame of ``ledger.runs()`` or a sweep id (both with ``ledger``)."""
    if isinstance(runs, RunCore) or hasattr(runs, "aio"):
        return [runs]
    if isinstance(runs, str) or hasattr(runs, "columns"):
        if ledger is None:
            raise TypeError("a sweep id or a ledger frame names runs in a ledger: pass ledger=... too")
        ids = list(ledger.runs(sweep=runs)["id"]) if isinstance(runs, str) else list(runs["id"])
        if isinstance(runs, str) and not ids:
            raise ValueError(f"no sweep {runs!r} in ledger {ledger}: ledger.sweeps() lists them")
        return [ledger.restore(str(i)) for i in ids]
    if hasattr(runs, "runs") and not callable(runs.runs):
        runs = runs.runs
    return list(runs)


def client_ledger(cores: list[RunCore]) -> Ledger | None:
    """The ledger of the runs' own client, if any."""
    for core in cores:
        if isinstance(core, AsyncRun) and core.bound and core.client.ledger is not None:
            return core.client.ledger
    return None


def downloads_itself(run: RunCore, gallery: object) -> bool:
    """Whether the run's own client downloads its images into ``gallery`` when it completes."""
    return isinstance(run, AsyncRun) and run.bound and run.client.gallery is gallery


def loop_running() -> bool:
    """Whether this thread runs an event loop (Jupyter's kernel, a client's loop) to schedule work on."""
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
