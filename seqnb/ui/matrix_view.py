"""The matrix of series and its lightbox: one anywidget whatever the number of runs.

``seqnb.matrix(sweep, rows="prompt", cols="seed", facet="model")`` lays runs out by what varies
(``seqnb.images.matrix``) and sends one page at a time (``matrix_state``): labels, cell states,
marks and the page's thumbnails only. A click on a frame opens the lightbox; its large image is
sent on demand as a custom message with the bytes as a buffer. Every key and button of the
browser sends a message that a plain method here handles (``open``, ``step_frame``, ``step_run``,
``rate``, ``pick``, ``reject``, ``close_lightbox``, ``promote``...), which tests and scripts call too.
"""

from __future__ import annotations

import asyncio
import html
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from ..client.run import AsyncRun
from ..errors import SeqnbError
from ..images.fallback import StaticFallback, matrix_view_html
from ..images.gallery import Gallery
from ..images.matrix import Matrix, build_matrix, choose_axes
from ..images.render import Frame
from ..runs.run import RunCore, RunEvent
from ..session import gallery_of
from .matrix_promote import promote_choices, promote_runs
from .matrix_state import Marks, client_ledger, lightbox_info, loop_running, page_snapshot, runs_of
from .throttle import Throttle

if TYPE_CHECKING:
    from ..client.sync import Client
    from ..ledger.facade import Ledger

__all__ = ["MatrixView", "matrix"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
THUMBS_KEPT = 2000
"""Thumbnails kept in memory (about 4 kB each) before the memo starts again."""


class MatrixView(StaticFallback, anywidget.AnyWidget):
    """Series laid out by what varies, a page at a time; click a frame for the lightbox, keys to rate, pick, reject."""

    static_html = matrix_view_html  # what a saved notebook shows: the page, its thumbnails inside

    _esm = STATIC / "matrix.js"
    _css = STATIC / "matrix.css"

    snapshot = traitlets.Dict(help="the page shown: axes, headers, cells with states, marks and thumbnails").tag(
        sync=True
    )
    lightbox = traitlets.Dict({"open": False}, help="the frame open in the lightbox and what it says").tag(sync=True)
    message = traitlets.Unicode("", help="the outcome of the last action, as HTML").tag(sync=True)

    def __init__(
        self,
        runs: Any,
        rows: str | None = "prompt",
        cols: str | None = "seed",
        facet: str | None = "model",
        *,
        gallery: Gallery | None = None,
        ledger: Ledger | None = None,
        client: Client | None = None,
        page_rows: int = 4,
        page_cols: int = 6,
        thumb: int = 96,
        large: int = 1024,
        interval: float = 0.5,
        rank: Any = None,
    ) -> None:
        given = runs_of(runs, ledger)
        self.originals: dict[str, Any] = {}
        """Run id -> the object given (a ``Run`` keeps its client, for Promote)."""
        cores = self._adopt(given)
        self.gallery = gallery or gallery_of(cores)
        self.ledger = ledger or self.gallery.ledger or client_ledger(cores)
        self.client = client or next((r.client for r in given if hasattr(r, "aio") and hasattr(r, "client")), None)
        self.page_rows, self.page_cols, self.thumb, self.large = page_rows, page_cols, thumb, large
        self.row_page = self.col_page = self.facet_page = 0
        self.frames: dict[str, list[Frame]] = {}
        self.marks: dict[str, Marks] = {}
        self.large_sent: tuple[dict[str, Any], bytes] | None = None
        """The last large image sent (its message and bytes), for tests and benchmarks."""
        self.stale = False
        self._loading: set[str] = set()
        self._thumbs: dict[str, str] = {}
        self._lock = threading.RLock()
        """Image sha256 -> its thumbnail's data URL, so a page shown again reads no file."""
        self._closed = False
        self._throttle = Throttle(interval, self.refresh)
        strength = dict(zip(rank["run_id"], rank["strength"], strict=True)) if hasattr(rank, "columns") else rank
        self.matrix: Matrix = build_matrix(cores, *choose_axes(cores, rows, cols, facet), strength=strength)
        self._unsubscribe = [core.subscribe(self._on_event) for core in cores]
        super().__init__()
        self.on_msg(lambda _, content, buffers: self.handle_message(content))
        self.refresh()

    def _adopt(self, given: Iterable[Any]) -> list[RunCore]:
        cores = []
        for run in given:
            core = getattr(run, "aio", run)
            if not isinstance(core, RunCore):
                raise TypeError(f"a matrix is made of runs (Run, AsyncRun), not {type(run).__name__}")
            if core.id not in self.originals:
                self.originals[core.id] = run
                cores.append(core)
        return cores

    # --- the page ---------------------------------------------------------------------------

    def refresh(self) -> dict[str, Any]:
        """Rebuild the page shown (marks re-read, thumbnails of its cells only) and send it; returns it."""
        with self._lock:  # run events may refresh from the client's loop while a click does from the kernel's
            return self._refresh()

    def _refresh(self) -> dict[str, Any]:
        self.stale = False
        m = self.matrix
        page = m.page(self.row_page, self.col_page, rows=self.page_rows, cols=self.page_cols, facet=self.facet_page)
        self.row_page, self.col_page, self.facet_page = page.row_page, page.col_page, page.facet
        self.marks = self._read_marks([r.id for r in m.runs])
        frames = {run.id: self._frames_of(run) for run in page.runs()}
        picked = sum(1 for mk in self.marks.values() if mk.verdict == "picked")
        if len(self._thumbs) > THUMBS_KEPT:
            self._thumbs.clear()
        snapshot = page_snapshot(
            m, page, store=self.gallery.cache, frames=frames, marks=self.marks, size=self.thumb,
            page_rows=self.page_rows, page_cols=self.page_cols, picked=picked, thumbs=self._thumbs,
        )  # fmt: skip
        prices = self.client.prices if self.client is not None else None
        snapshot["promote"] = promote_choices(self.picked(), prices) if self.client is not None else {}
        snapshot["marks"] = self.ledger is not None
        if not self._closed:
            self.snapshot = snapshot
        return snapshot

    def _frames_of(self, run: RunCore) -> list[Frame] | None:
        """The run's frames if its images are in; a completed run's missing images are fetched (in the background on a loop)."""
        if run.status != "completed":
            return None
        if run.id in self.frames:
            return self.frames[run.id]
        if self.gallery.ready(run) or not loop_running():
            try:
                self.frames[run.id] = self.gallery.frames(run)
            except Exception as exc:  # the cell says so; the other cells are drawn
                log.warning("frames of run %s not loaded: %s", run.id, exc)
                return None
            return self.frames[run.id]
        downloading = isinstance(run, AsyncRun) and run.bound and run.client.gallery is self.gallery
        if downloading and run.id not in self.gallery.errors:
            self._throttle.poke()  # its gallery fetches it at completion: look again in a moment
        elif run.id not in self._loading:
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
        self._throttle.poke()

    def _read_marks(self, ids: list[str]) -> dict[str, Marks]:
        if self.ledger is None:
            return {}
        try:
            return {run_id: Marks.of(m) for run_id, m in self.ledger.marks_of(ids).items()}
        except SeqnbError as exc:
            self.message = f"marks not read: {html.escape(str(exc))}"
            return self.marks

    def _on_event(self, event: RunEvent) -> None:
        self.frames.pop(event.run.id, None)
        if not self._throttle.poke():
            self.stale = True  # no loop running (a script): refresh() when you want the page

    def set_axes(self, rows: str | None, cols: str | None, facet: str | None = None) -> None:
        """Lay the runs out anew (back to the first page); an axis may be None (one row, column or facet)."""
        try:
            m = self.matrix
            self.matrix = build_matrix(m.runs, rows or None, cols or None, facet or None, strength=m.strength)
        except ValueError as exc:
            self.message = html.escape(str(exc))
            return
        self.row_page = self.col_page = self.facet_page = 0
        self.refresh()

    def swap(self) -> None:
        """Exchange rows and columns."""
        self.matrix = self.matrix.swapped()
        self.row_page, self.col_page = self.col_page, self.row_page
        self.refresh()

    def turn(self, rows: int = 0, cols: int = 0) -> None:
        """Move the window ``rows`` pages down and ``cols`` pages right (clamped)."""
        self.row_page += rows
        self.col_page += cols
        self.refresh()

    def show_facet(self, index: int) -> None:
        self.facet_page = index
        self.refresh()

    def add(self, runs: Iterable[Any]) -> None:
        """Put more runs into the matrix (promoted ones beside their originals)."""
        new = self._adopt(runs)
        self._unsubscribe += [core.subscribe(self._on_event) for core in new]
        m = self.matrix
        self.matrix = build_matrix([*m.runs, *new], m.rows_axis, m.cols_axis, m.facet_axis, strength=m.strength)
        self.refresh()

    # --- the lightbox -----------------------------------------------------------------------

    def open_frame(self, run_id: str, frame: int = 0) -> dict[str, Any]:
        """Open a frame of a run large: its details set at once, the image sent as a custom message."""
        run = self.matrix.find(run_id)
        if run is None:
            self.message = f"no run <code>{html.escape(run_id[:12])}</code> in this matrix"
            return dict(self.lightbox)
        frame = min(max(0, int(frame)), run.requested - 1)
        self._follow(run)
        frames = self.frames.get(run.id) or self._frames_of(run)
        marks = self.marks.get(run.id, Marks())
        self.lightbox = lightbox_info(run, frame, marks, frames)
        self._send_large(run, frame, frames)
        return dict(self.lightbox)

    def _follow(self, run: RunCore) -> None:
        """Turn the page behind the lightbox to the run's cell (stepping down may leave the page)."""
        where = self.matrix.locate(run.id)
        if where is None:
            return
        facet, row, col = where
        at = (row // self.page_rows, col // self.page_cols, facet)
        if at != (self.row_page, self.col_page, self.facet_page):
            self.row_page, self.col_page, self.facet_page = at
            self.refresh()

    def _send_large(self, run: RunCore, frame: int, frames: list[Frame] | None) -> None:
        image = frames[frame].image if frames is not None and frame < len(frames) else None
        if image is None:
            return
        try:
            data = self.gallery.cache.thumbnail(image, self.large).read_bytes()
        except OSError:
            if not image.path.exists():
                return
            data = self.gallery.cache.render_thumbnail(image, self.large)
        content = {"kind": "large", "run": run.id, "frame": frame}
        self.large_sent = (content, data)
        if not self._closed:
            self.send(content, [data])

    def _current(self) -> tuple[RunCore, int] | None:
        box = self.lightbox
        run = self.matrix.find(str(box.get("run"))) if box.get("open") else None
        return (run, int(box.get("frame", 0))) if run is not None else None

    def close_lightbox(self) -> None:
        self.lightbox = {"open": False}

    def step_frame(self, step: int) -> dict[str, Any]:
        """The next (``+1``) or previous (``-1``) frame of the run open (stays at the ends)."""
        current = self._current()
        if current is None:
            return dict(self.lightbox)
        run, frame = current
        return self.open_frame(run.id, min(max(0, frame + step), run.requested - 1))

    def step_run(self, step: int) -> dict[str, Any]:
        """The run ``step`` places down the current column (the next value of the row axis), same frame."""
        current = self._current()
        if current is None:
            return dict(self.lightbox)
        run, frame = current
        target = self.matrix.along_rows(run.id, step)
        if target is None:
            self.message = "no further run " + ("down" if step > 0 else "up") + " this column"
            return dict(self.lightbox)
        return self.open_frame(target.id, frame)

    def rate(self, n: int, *, series: bool = False) -> None:
        """Rate the frame open 1-5 (0 clears); ``series=True`` rates the whole run instead."""
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 5:
            self.message = f"a rating is a whole number from 1 to 5 (0 clears), not {html.escape(repr(n))}"
            return
        current = self._current()
        if current is not None:
            run, frame = current
            self._mark(run, frame=None if series else frame, rating=n)

    def pick(self) -> None:
        """Pick the run open (again: un-pick)."""
        self._verdict("picked")

    def reject(self) -> None:
        """Reject the run open (again: clear)."""
        self._verdict("rejected")

    def _verdict(self, verdict: str) -> None:
        current = self._current()
        if current is not None:
            run, _ = current
            same = self.marks.get(run.id, Marks()).verdict == verdict
            self._mark(run, verdict="none" if same else verdict)

    def _mark(self, run: RunCore, **what: Any) -> None:
        if self.ledger is None:
            self.message = "marks are kept in a ledger: connect with a ledger (seqnb.connect()) or pass ledger=..."
            return
        try:
            self.ledger.mark(run.id, **what)
        except (SeqnbError, ValueError) as exc:
            self.message = f"not marked: {html.escape(str(exc))}"
            return
        self.message = ""
        self.refresh()
        if self.lightbox.get("open"):
            frames = self.frames.get(run.id)
            info = lightbox_info(run, int(self.lightbox["frame"]), self.marks.get(run.id, Marks()), frames)
            self.lightbox = info

    # --- promote ----------------------------------------------------------------------------

    def picked(self) -> list[RunCore]:
        """The runs of the matrix marked picked, in matrix order."""
        return [r for r in self.matrix.runs if self.marks.get(r.id, Marks()).verdict == "picked"]

    def promote(self, choice: str = "same settings") -> Any:
        """Re-submit the picked runs with a change (``promote_choices``): priced and checked like a sweep; returns it."""
        if self.client is None:
            self.message = "Promote needs the client that is to send the runs: pass client=..."
            return None
        picked = self.picked()
        sweep, text = promote_runs(self.client, [self.originals[r.id] for r in picked], choice)
        self.message = text
        if sweep is not None:
            self.add(sweep)
        return sweep

    # --- messages ---------------------------------------------------------------------------

    def handle_message(self, content: Any) -> Any:
        """Act on a message from the browser: ``{"action": "open", "run": id, "frame": i}``, ``step_frame`` /
        ``step_run`` with ``"step"``, ``rate`` with ``"n"`` (and ``"series"``), ``pick``, ``reject``, ``close``,
        ``axes`` (``rows``, ``cols``, ``facet``), ``swap``, ``page`` (``rows``, ``cols``: steps), ``facet``
        (``index``), ``promote`` (``choice``), ``refresh``."""
        c = content if isinstance(content, dict) else {}
        action = c.get("action")
        actions: dict[str, Callable[[], Any]] = {
            "open": lambda: self.open_frame(str(c.get("run")), int(c.get("frame", 0))),
            "step_frame": lambda: self.step_frame(int(c.get("step", 1))),
            "step_run": lambda: self.step_run(int(c.get("step", 1))),
            "rate": lambda: self.rate(int(c.get("n", -1)), series=bool(c.get("series"))),
            "pick": self.pick, "reject": self.reject, "close": self.close_lightbox, "swap": self.swap,
            "axes": lambda: self.set_axes(c.get("rows"), c.get("cols"), c.get("facet")),
            "page": lambda: self.turn(int(c.get("rows", 0)), int(c.get("cols", 0))),
            "facet": lambda: self.show_facet(int(c.get("index", 0))),
            "promote": lambda: self.promote(str(c.get("choice", "same settings"))),
            "refresh": self.refresh,
        }  # fmt: skip
        if action in actions:
            try:
                return actions[action]()
            except (TypeError, ValueError) as exc:
                self.message = f"{html.escape(str(action))}: {html.escape(str(exc))}"
                return None
        self.message = f"the matrix does not know the action {html.escape(str(action))!r}"
        return None

    def close(self) -> None:
        """Stop following the runs and close the widget."""
        self._closed = True
        self._throttle.cancel()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        super().close()


def matrix(
    runs: Any, rows: str | None = "prompt", cols: str | None = "seed", facet: str | None = "model", **options: Any
) -> MatrixView:
    """Series laid out by what varies: ``seqnb.matrix(sweep, rows="prompt", cols="seed", facet="model")``.

    ``runs``: a list of runs, a ``Sweep``, or a frame of ``ledger.runs()`` or a sweep id with
    ``ledger=``. An axis that does not vary gives its place to one that does. Options:
    ``ledger``, ``gallery``, ``client`` (for Promote), ``page_rows``, ``page_cols``, ``thumb``, ``large``,
    ``rank`` (``ledger.ranking(...)``, or run id -> strength: rows and columns strongest first).
    """
    return MatrixView(runs, rows, cols, facet, **options)
