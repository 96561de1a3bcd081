"""The Studio's Gallery tab: the completed runs of a session (the kernel's, in the Studio) as grids
(``seqnb.images.grid``), a page at a time, or one sweep as a matrix of series (``seqnb.ui.matrix_view``) or as a
duel (``seqnb.ui.duel_view``)."""

from __future__ import annotations

import asyncio
import html
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import ipywidgets as w

from .._loop import LoopRunner
from ..errors import SeqnbError
from ..images.grid import grid
from ..runs.run import RunCore, RunEvent
from ..session import KernelSession
from .closing import close_tree, replace_children
from .duel_view import DuelView
from .matrix_state import downloads_itself
from .matrix_view import MatrixView
from .sweep_names import SweepNames
from .throttle import Throttle

if TYPE_CHECKING:
    from ..client.sync import Client
    from ..images.gallery import Gallery

__all__ = ["GalleryView"]


class GalleryView(w.VBox):
    """A session's completed runs, newest first, a page at a time: only the shown page's thumbnails are made and sent.

    Runs are listed as they complete (O(1) per event). The page is rebuilt (the old one closed)
    when it is turned, when the view is shown, and, while shown on the first page, at most once
    per ``interval`` as runs complete; a hidden view only notes that it is stale. Runs whose images
    are still downloading show up on a later rebuild: the view never waits for a download. The
    images of a run no client here downloads (a row read back from the ledger, another client's)
    are fetched through ``client``'s gallery in the background (from its cache when they are there).
    The Matrix mode shows one sweep (the session's, or any in the ledger) as a ``MatrixView``.
    """

    def __init__(
        self,
        client: Client,
        *,
        session: KernelSession | None = None,
        page_size: int = 4,
        size: int | None = None,
        interval: float = 1.0,
        visible: bool = True,
    ) -> None:
        self.client = client
        """The client whose gallery draws the runs and whose ledger the matrix reads."""
        self.session = session or KernelSession([client])
        self.page_size = page_size
        self.size = size
        self.page = 0
        self.visible = visible
        self.stale = True
        self.completed: dict[str, RunCore] = {}
        """Completed runs by id, in the order they completed."""
        self._fetching: set[str] = set()
        """Runs whose images this view fetched (or is fetching): each once."""
        self._sweep_names = SweepNames(client.ledger)
        self._throttle = Throttle(interval, self._refresh_due)
        self.prev_button = w.Button(description="newer", icon="chevron-left", layout=w.Layout(width="90px"))
        self.next_button = w.Button(description="older", icon="chevron-right", layout=w.Layout(width="90px"))
        self.label = w.HTML()
        self.body = w.VBox([w.HTML("<i>completed runs appear here</i>")])
        self.prev_button.on_click(lambda _: self.turn(-1))
        self.next_button.on_click(lambda _: self.turn(1))
        self.mode = w.ToggleButtons(
            options=[("Recent", "recent"), ("Matrix", "matrix"), ("Duel", "duel")], value="recent"
        )
        self.sweep_picker = w.Dropdown(description="sweep", options=[], layout=w.Layout(display="none", width="420px"))
        self.pager = w.HBox([self.prev_button, self.label, self.next_button])
        self.matrix_box = w.VBox([])
        self.matrix: MatrixView | DuelView | None = None
        self.mode.observe(lambda change: self.set_mode(change["new"]), "value")
        self.sweep_picker.observe(lambda change: self.show_sweep(change["new"]), "value")
        super().__init__([w.HBox([self.mode, self.sweep_picker]), self.pager, self.body, self.matrix_box])
        self._unsubscribe = self.session.follow(self._on_event, self._take_runs)
        if visible:
            self.refresh()

    @property
    def pages(self) -> int:
        return max(1, -(-len(self.completed) // self.page_size))

    def page_ids(self) -> list[str]:
        """The run ids on the current page, newest first."""
        start = self.page * self.page_size
        return list(itertools.islice(reversed(self.completed), start, start + self.page_size))

    def _on_event(self, event: RunEvent) -> None:
        if event.new != "completed" or (event.old == "completed" and event.run.id in self.completed):
            return
        self.completed.pop(event.run.id, None)  # a row read back, now the same run of a client: newest
        self.completed[event.run.id] = event.run
        self._changed()

    def _take_runs(self, runs: Sequence[RunCore]) -> None:
        """Runs the view did not see complete (a client that joined, rows read back): placed by when they ended."""
        done = [r for r in runs if r.status == "completed"]
        if not done:
            return
        merged = {**self.completed, **{r.id: r for r in done}}
        self.completed = dict(sorted(merged.items(), key=lambda item: item[1].finished_at or item[1].created_at))
        self._changed()

    def _changed(self) -> None:
        self.stale = True
        if self.visible and self.page == 0:
            self._throttle.poke()  # not on a loop (a script): call refresh() when you want the page

    def _refresh_due(self) -> None:
        if self.visible and self.stale:
            self.refresh()

    def show(self, visible: bool = True) -> None:
        """Say whether the view is on screen; a view shown again catches up once."""
        self.visible = visible
        if visible and self.stale:
            self.refresh()

    def turn(self, step: int) -> None:
        """Go ``step`` pages older (negative: newer)."""
        self.page = min(max(0, self.page + step), self.pages - 1)
        self.refresh()

    # --- the matrix mode -------------------------------------------------------------------

    def recent_sweeps(self, limit: int = 12) -> list[tuple[str, str]]:
        """(name, sweep id) of the newest sweeps in the ledger (else of the session's runs), for the picker: by when
        they started and what their prompts say (``SweepNames``)."""
        ledger = self.client.ledger
        runs = self.session.runs()
        held = list(dict.fromkeys(r.sweep_id for r in reversed(runs) if r.sweep_id))
        ids = ledger.recent_sweeps(most=limit) if ledger is not None else held[:limit]
        return self._sweep_names.options(ids, runs)

    def set_mode(self, mode: str) -> None:
        """``"recent"``: the newest completed runs, a page at a time; ``"matrix"``: one sweep as a matrix; ``"duel"``:
        one sweep's series two at a time, blind."""
        self.mode.value = mode
        matrix = mode in ("matrix", "duel")
        self.pager.layout.display = self.body.layout.display = "none" if matrix else ""
        self.sweep_picker.layout.display = self.matrix_box.layout.display = "" if matrix else "none"
        if not matrix:
            self.show(self.visible)
            return
        options = self.recent_sweeps()
        self.sweep_picker.options = options
        if options and self.sweep_picker.value not in [i for _, i in options]:
            self.sweep_picker.value = options[0][1]  # shown through the observer
        elif not options:
            replace_children(self.matrix_box, [w.HTML("<i>no sweep yet: send one, then choose it here</i>")])
        elif self.matrix is None or isinstance(self.matrix, DuelView) != (mode == "duel"):
            self.show_sweep(self.sweep_picker.value)

    def show_sweep(self, sweep_id: str | None) -> MatrixView | DuelView | None:
        """Show a sweep as a matrix or a duel (this client's runs of it, else its runs rebuilt from the ledger); the old
        one closed."""
        if not sweep_id:
            return None
        runs = [r for r in self.session.runs() if r.sweep_id == sweep_id]
        source: object = runs or sweep_id
        ledger, gallery = self.client.ledger, self.client.gallery
        try:
            if self.mode.value == "duel":
                self.matrix = DuelView(source, ledger=ledger, gallery=gallery)
            else:
                self.matrix = MatrixView(source, client=self.client, ledger=ledger, gallery=gallery)
        except (SeqnbError, ValueError) as exc:
            self.matrix = None
            replace_children(self.matrix_box, [w.HTML(f"<i>{html.escape(str(exc))}</i>")])
            return None
        replace_children(self.matrix_box, [self.matrix])
        return self.matrix

    def refresh(self) -> None:
        """Rebuild the current page from the runs whose images are in (the previous page is closed)."""
        if self.mode.value != "recent":
            self.stale = True  # the recent runs catch up when that mode is shown again
            return
        self.stale = False
        gallery = self.client.gallery
        self.page = min(self.page, self.pages - 1)
        runs = [self.completed[i] for i in self.page_ids()]
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page + 1 >= self.pages
        label = f"page {self.page + 1} of {self.pages} · {len(self.completed)} completed runs"
        if gallery is None:
            self.label.value = label
            replace_children(self.body, [w.HTML("<i>this client downloads no images (connect with download=True)</i>")])
            return
        ready = [r for r in runs if gallery.ready(r)]
        waiting = len(runs) - len(ready)
        self.label.value = label + (f" · {waiting} still downloading" if waiting else "")
        if waiting:
            self._fetch(gallery, [r for r in runs if not gallery.ready(r) and not downloads_itself(r, gallery)])
            self.stale = True
            self._throttle.poke()
        if ready:
            replace_children(self.body, [grid(gallery, ready, self.size)])
        elif not runs:
            replace_children(self.body, [w.HTML("<i>completed runs appear here</i>")])

    def _fetch(self, gallery: Gallery, runs: list[RunCore]) -> None:
        """Fetch, in the background, the images of shown runs that no client's gallery here downloads; the page is
        rebuilt when they are in."""
        wanted = [r for r in runs if r.id not in self._fetching]
        if wanted:
            self._fetching.update(r.id for r in wanted)
            LoopRunner().spawn(self._fetched(gallery, wanted))

    async def _fetched(self, gallery: Gallery, runs: list[RunCore]) -> None:
        await asyncio.gather(*(gallery.download(r) for r in runs), return_exceptions=True)
        self.stale = True  # (a run whose fetch failed is not fetched again: it stays "still downloading")
        if self.visible and not self._throttle.poke():  # not on a loop: now
            self.refresh()

    def close(self) -> None:
        """Stop following the client and close the view and everything it shows."""
        self._unsubscribe()
        self._throttle.cancel()
        close_tree(list(self.children))
        super().close()
