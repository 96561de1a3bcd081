"""The matrix of series and its lightbox: one anywidget whatever the number of runs.

``seqnb.matrix(sweep, rows="prompt", cols="seed", facet="model")`` lays runs out by what varies
(``seqnb.images.matrix``) and sends one page at a time (``matrix_state``): labels, cell states,
marks and the page's thumbnails only. A click on a frame (or Enter on the focused one) opens the
lightbox; its large image is sent on demand as a custom message with the bytes as a buffer. Every key
and button of the browser sends a message that a plain method here handles (``open_frame``,
``step_frame`` across series, ``step_run`` down the column, ``step_facet``, ``rate``, ``pick``,
``reject``, ``close_lightbox``, ``offer_promote`` then ``confirm_promote``...), which tests and
scripts call too. Runs made from a run of the matrix (a promote, a rerun) show under it, badged,
whether they were made here, from code in this kernel, or found in the ledger for a pick.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import traitlets

from ..errors import SeqnbError
from ..images.fallback import matrix_view_html
from ..images.gallery import Gallery
from ..images.matrix import Matrix, build_matrix, choose_axes
from ..images.render import Frame
from ..ledger.marks import RunMarks
from ..runs.run import RunCore, RunEvent
from .matrix_promote import SAME, Offer, not_sent, price_offer, promote_choices, send_offer
from .matrix_state import SeriesView, downloads_itself, lightbox_info, page_snapshot
from .throttle import Throttle

if TYPE_CHECKING:
    from ..client.sync import Client
    from ..ledger.facade import Ledger

__all__ = ["MatrixView", "matrix"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
THUMBS_KEPT = 2000
"""Thumbnails kept in memory (about 4 kB each) before the memo starts again."""


class MatrixView(SeriesView):
    """Series laid out by what varies, a page at a time; click a frame for the lightbox, keys to rate, pick, reject."""

    noun = "matrix"
    static_html = matrix_view_html  # what a saved notebook shows: the page, its thumbnails inside

    _esm = STATIC / "matrix.js"
    _css = STATIC / "matrix.css"

    snapshot = traitlets.Dict(help="the page shown: axes, headers, cells with states, marks and thumbnails").tag(
        sync=True
    )
    lightbox = traitlets.Dict({"open": False}, help="the frame open in the lightbox and what it says").tag(sync=True)
    offer = traitlets.Dict(
        {}, help="the promote priced and waiting for its confirm click: the button's words (the sum), what is left out"
    ).tag(sync=True)

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
        cores, self.ledger = self._given(runs, gallery, ledger)
        given = self.originals.values()  # a ``Run`` keeps its client, for Promote
        self.client = client or next((r.client for r in given if hasattr(r, "aio") and hasattr(r, "client")), None)
        self.page_rows, self.page_cols, self.thumb, self.large = page_rows, page_cols, thumb, large
        self.row_page = self.col_page = self.facet_page = 0
        self.marks: dict[str, RunMarks] = {}
        self.large_sent: tuple[dict[str, Any], bytes] | None = None
        """The last large image sent (its message and bytes), for tests and benchmarks."""
        self.stale = False
        self._lock = threading.RLock()
        self._offer: Offer | None = None
        self._children: list[Any] = []
        """Runs made from runs of the matrix, seen in the client's events, to place at the next refresh."""
        self._throttle = Throttle(interval, self._refresh_soon)
        cores += self._adopt(self._known_children(cores))
        strength = dict(zip(rank["run_id"], rank["strength"], strict=True)) if hasattr(rank, "columns") else rank
        self.matrix: Matrix = build_matrix(cores, *choose_axes(cores, rows, cols, facet), strength=strength)
        self._unsubscribe = [core.subscribe(self._on_event) for core in cores]
        if self.client is not None:
            self._unsubscribe.append(self.client.subscribe(self._on_client_event))
        super().__init__()
        self.on_msg(lambda _, content, buffers: self.handle_message(content))
        self.refresh()

    def _known_children(self, cores: list[RunCore]) -> list[Any]:
        """Runs already made from these: the client's (this kernel), and the ledger's for the picks."""
        ids = {core.id for core in cores}
        found: dict[str, Any] = {}
        if self.client is not None:
            for run in self.client.runs():
                if run.aio.parent_id in ids and run.id not in ids:
                    found[run.id] = run
        if self.ledger is not None:
            try:
                picked = [i for i, m in self.ledger.marks_of(list(ids)).items() if m.verdict == "picked"]
                for run_id in picked:
                    for child in self.ledger.children(run_id):
                        found.setdefault(child.id, child)
            except SeqnbError as exc:
                log.warning("promoted runs of the picks not read: %s", exc)
        return [run for run_id, run in found.items() if run_id not in ids]

    def _on_client_event(self, event: RunEvent) -> None:
        """A new run of the client made from a run of the matrix (promoted from code, say) joins it at the next refresh."""
        run = event.run
        if run.parent_id in self.originals and run.id not in self.originals:
            self._children.append(run)
            if not self._throttle.poke():
                self.stale = True

    # --- the page ---------------------------------------------------------------------------

    def refresh(self) -> dict[str, Any]:
        """Rebuild the page shown (marks re-read, thumbnails of its cells only) and send it; returns it."""
        with self._lock:  # run events may refresh from the client's loop while a click does from the kernel's
            return self._refresh()

    def _refresh_soon(self) -> None:
        """The throttle's refresh, on the client's loop: never waits for the lock, whose holder may be waiting for
        that very loop (a script's refresh downloading images through it); busy, it looks again a moment later."""
        if not self._lock.acquire(blocking=False):
            self._throttle.poke()
            return
        try:
            self._refresh()
        finally:
            self._lock.release()

    def _refresh(self) -> dict[str, Any]:
        self.stale = False
        if self._children:
            children, self._children = self._children, []
            self._place(children)
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
        picked_runs = self.picked()
        snapshot["promote"] = [c.name for c in promote_choices(picked_runs)] if self.client is not None else []
        snapshot["marks"] = self.ledger is not None
        if self._offer is not None and self._offer.picks != tuple(r.id for r in picked_runs):
            self._drop_offer("the picks changed since Promote was priced: click Promote again to see the new total")
        if not self._closed:
            self.snapshot = snapshot
        return snapshot

    def _frames_of(self, run: RunCore) -> list[Frame] | None:
        return super()._frames_of(run) if run.status == "completed" else None

    def _fetched_elsewhere(self, run: RunCore) -> bool:
        """Its own client downloads it into this gallery at completion: the page looks again in a moment."""
        if downloads_itself(run, self.gallery) and run.id not in self.gallery.errors:
            self._throttle.poke()
            return True
        return False

    def static_frames(self, run: RunCore) -> list[Frame] | None:
        """A run's frames for the saved copy (``images.fallback.matrix_view_html``), whatever page it is on."""
        return self.frames.get(run.id) or self._frames_of(run)

    def _frames_loaded(self) -> None:
        self._throttle.poke()

    def _read_marks(self, ids: list[str]) -> dict[str, RunMarks]:
        if self.ledger is None:
            return {}
        try:
            return self.ledger.marks_of(ids)
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
        """Show the ``index``-th value of the facet axis (its table)."""
        self.facet_page = index
        self.refresh()

    def add(self, runs: Iterable[Any]) -> None:
        """Put more runs into the matrix (a run made from one of it under its original, badged)."""
        with self._lock:
            self._place(runs)
            self.refresh()

    def _place(self, runs: Iterable[Any]) -> None:
        new = self._adopt(runs)
        if not new:
            return
        self._unsubscribe += [core.subscribe(self._on_event) for core in new]
        m = self.matrix
        self.matrix = build_matrix([*m.runs, *new], m.rows_axis, m.cols_axis, m.facet_axis, strength=m.strength)

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
        marks = self.marks.get(run.id, RunMarks())
        self.lightbox = lightbox_info(run, frame, marks, frames, self.matrix)
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
        data = self._large(frames[frame] if frames is not None and frame < len(frames) else None)
        if data is None:
            return
        content = {"kind": "large", "run": run.id, "frame": frame}
        self.large_sent = (content, data)
        if not self._closed:
            self.send(content, [data])

    def _current(self) -> tuple[RunCore, int] | None:
        box = self.lightbox
        run = self.matrix.find(str(box.get("run"))) if box.get("open") else None
        return (run, int(box.get("frame", 0))) if run is not None else None

    def close_lightbox(self) -> None:
        """Close the lightbox (the browser then puts the focus on the frame last shown)."""
        self.lightbox = {"open": False}

    def step_frame(self, step: int) -> dict[str, Any]:
        """The next (``+1``) or previous (``-1``) frame; past a series' last frame, the first frame of the next series
        along the row (then the next row), before its first, the last frame of the previous one."""
        current = self._current()
        if current is None:
            return dict(self.lightbox)
        run, frame = current
        if 0 <= frame + step < run.requested:
            self.message = ""
            return self.open_frame(run.id, frame + step)
        target = self.matrix.along_cols(run.id, 1 if step > 0 else -1)
        if target is None:
            more = " (f: the next table)" if len(self.matrix.facets) > 1 else ""
            self.message = f"the {'last' if step > 0 else 'first'} series of this table{more}"
            return dict(self.lightbox)
        self.message = ""
        return self.open_frame(target.id, 0 if step > 0 else target.requested - 1)

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
        self.message = ""
        return self.open_frame(target.id, frame)

    def step_facet(self, step: int = 1) -> dict[str, Any]:
        """The next (``+1``) or previous (``-1``) table of the facet axis (round them): in the lightbox, the run at
        the same row and column there, same frame; else the page shows that table."""
        facets = len(self.matrix.facets)
        if facets < 2:
            self.message = "one table only: choose a facet axis (say model) to switch between tables"
            return dict(self.lightbox)
        current = self._current()
        if current is None:
            self.show_facet((self.facet_page + step) % facets)
            return dict(self.lightbox)
        run, frame = current
        target = self.matrix.across_facets(run.id, step)
        if target is None:
            self.message = "nothing in that table"
            return dict(self.lightbox)
        self.message = ""
        return self.open_frame(target.id, min(frame, target.requested - 1))

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
            same = self.marks.get(run.id, RunMarks()).verdict == verdict
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
            marks = self.marks.get(run.id, RunMarks())
            self.lightbox = lightbox_info(run, int(self.lightbox["frame"]), marks, frames, self.matrix)

    # --- promote ----------------------------------------------------------------------------

    def picked(self) -> list[RunCore]:
        """The runs of the matrix marked picked, in matrix order."""
        return [r for r in self.matrix.runs if self.marks.get(r.id, RunMarks()).verdict == "picked"]

    def offer_promote(self, choice: str = SAME, again: bool = False) -> dict[str, Any]:
        """Price a promote of the picks (``promote_choices`` names the choices) as the client would send it; nothing
        is sent: ``confirm_promote()`` (the button that states the sum) sends it. ``again``: picks that already have a
        promoted child with the same request are made once more (and paid again)."""
        if self.client is None:
            self.message = "Promote needs the client that is to send the runs: pass client=..."
            return {}
        picked = self.picked()
        if not picked:
            self.message = "pick some series first (<kbd>p</kbd> in the lightbox), then Promote"
            return {}
        ids = [r.id for r in picked]
        try:
            offer = price_offer(self.client, promote_choices(picked), ids, choice, again)
        except (SeqnbError, ValueError) as exc:
            self._drop_offer(not_sent(exc, ids))
            return {}
        self._offer = offer
        self.offer = offer.state()
        self.message = "" if offer.runs else "nothing to send: " + html.escape("; ".join(self.offer["notes"]))
        return dict(self.offer)

    def confirm_promote(self) -> list[Any]:
        """Send the promote priced by ``offer_promote`` (planned again: only the runs and sum shown leave); returns the
        promotes sent, whose runs join the matrix under their originals."""
        offer = self._offer
        if offer is None or self.client is None or not offer.runs:
            self.message = "nothing to confirm: choose a change and click Promote first"
            return []
        picked = self.picked()
        if offer.picks != tuple(r.id for r in picked):
            self._drop_offer("the picks changed since Promote was priced: nothing was sent; click Promote again")
            return []
        sent, fresh, text = send_offer(self.client, offer, promote_choices(picked))
        self._offer = fresh
        self.offer = fresh.state() if fresh is not None else {}
        self.message = text
        for sweep in sent:
            self.add(sweep)
        return sent

    def cancel_promote(self) -> None:
        """Forget the promote waiting for its confirm click."""
        self._drop_offer("")

    def _drop_offer(self, message: str) -> None:
        self._offer = None
        self.offer = {}
        self.message = message

    # --- messages ---------------------------------------------------------------------------

    def handle_message(self, content: Any) -> Any:
        """Act on a message from the browser, ``{"action": "open", "run": id, "frame": i}`` say: each action below calls
        its method with the message's arguments."""
        c = content if isinstance(content, dict) else {}
        actions: dict[str, Callable[[], Any]] = {
            "open": lambda: self.open_frame(str(c.get("run")), int(c.get("frame", 0))),
            "step_frame": lambda: self.step_frame(int(c.get("step", 1))),
            "step_run": lambda: self.step_run(int(c.get("step", 1))),
            "step_facet": lambda: self.step_facet(int(c.get("step", 1))),
            "rate": lambda: self.rate(int(c.get("n", -1)), series=bool(c.get("series"))),
            "pick": self.pick, "reject": self.reject, "close": self.close_lightbox, "swap": self.swap,
            "axes": lambda: self.set_axes(c.get("rows"), c.get("cols"), c.get("facet")),
            "page": lambda: self.turn(int(c.get("rows", 0)), int(c.get("cols", 0))),
            "facet": lambda: self.show_facet(int(c.get("index", 0))),
            "promote": lambda: self.offer_promote(str(c.get("choice", SAME)), again=c.get("again") is True),
            "confirm": self.confirm_promote, "cancel_promote": self.cancel_promote,
            "refresh": self.refresh,
        }  # fmt: skip
        return self._act(c.get("action"), actions)

    def close(self) -> None:
        """Stop following the runs and close the widget."""
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
