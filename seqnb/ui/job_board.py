"""The job board: one widget whose cost does not grow with the number of runs.

It shows the runs of a ``KernelSession`` (``seqnb.session``): in the Studio, every client of the kernel and the
runs read back from the ledger; ``JobBoard(client)`` alone, that client's.

The kernel keeps the counts per event (``BoardState``, O(1) each) and sends a snapshot of bounded
size (recent sweeps with aggregate bars, one page of runs) at most ``1 / interval`` times a second,
coalescing every change in between; the browser draws it and runs the clocks itself. Clicks come
back as custom messages handled by plain methods (``cancel``, ``cancel_sweep``, ``cancel_queued``)
that tests and scripts call too. Everything happens on the client's loop (the kernel's, in Jupyter).
The front end is ``static/board.js`` and ``static/board.css``, real files shipped as package data.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from .._loop import LoopRunner
from ..client.sync import Client, Run
from ..errors import SeqnbError
from ..runs.run import RunCore, RunEvent
from ..session import KernelSession
from .board_state import FILTERS, VOCABULARY, BoardState
from .matrix_state import loop_running
from .throttle import Throttle

__all__ = ["JobBoard"]

STATIC = Path(__file__).parent / "static"


class JobBoard(anywidget.AnyWidget):
    """Every run of a client: a row per sweep with its aggregate bar and ETA, then a page of runs, Cancel."""

    _esm = STATIC / "board.js"
    _css = STATIC / "board.css"
    # anywidget reads both once; it watches them only with ANYWIDGET_HMR=1, and never inside site-packages.

    vocabulary = traitlets.Dict(
        default_value=VOCABULARY,
        help="the groups of runs, their colours and the status filters: the names board.js draws with",
    ).tag(sync=True)

    snapshot = traitlets.Dict(help="what the board shows: summary, counts, recent sweeps, one page of runs").tag(
        sync=True
    )
    page = traitlets.Int(0, help="the page of runs shown, from 0").tag(sync=True)
    page_size = traitlets.Int(20, help="runs per page").tag(sync=True)
    status_filter = traitlets.Unicode("all", help="all, active, or one of the groups of BUCKETS").tag(sync=True)
    text_filter = traitlets.Unicode("", help="show runs whose prompt or id contains this").tag(sync=True)
    message = traitlets.Unicode("", help="the outcome of the last action, as HTML").tag(sync=True)

    def __init__(
        self,
        client: Client,
        *,
        session: KernelSession | None = None,
        interval: float = 0.25,
        page_size: int = 20,
    ) -> None:
        self.client = client
        """The client whose prices estimate the runs read back."""
        self.session = session or KernelSession([client])
        """Whose runs the board shows (the Studio's: the kernel's)."""
        self.state = BoardState(prices=client.aio.prices, simulated=client.backend.kind == "emulator")
        self._lock = threading.Lock()  # events may come from the caller's thread and from the client's loop
        self._runner = LoopRunner()  # the kernel's loop in Jupyter (the client's), else seqnb's loop thread
        self._throttle = Throttle(interval, self.flush, spawn=self._runner.spawn)
        self._closed = False
        self.snapshots_sent = 0
        self._unsubscribe = self.session.follow(self._on_event, self._take_runs)
        super().__init__(page_size=page_size, snapshot=self._build(page_size))
        self.message = "<br>".join(html.escape(line) for line in self.session.left_out)  # a sweep read back in part
        self.observe(self._view_changed, ["page", "page_size", "status_filter", "text_filter"])
        self.on_msg(lambda _, content, buffers: self.handle_message(content))

    # --- kernel -> browser ------------------------------------------------------------------------

    def _on_event(self, event: RunEvent) -> None:
        with self._lock:
            self.state.update(event.run)
        if not self._closed:
            self._throttle.poke()  # from synchronous code (a run created in the caller's thread): on the client's loop

    def _take_runs(self, runs: Sequence[RunCore]) -> None:
        """Runs the board did not see made: a client's that joined the session, rows read back from the ledger."""
        with self._lock:
            for run in runs:
                self.state.update(run)
            self.state.simulated = all(c.backend.kind == "emulator" for c in self.session.clients or [self.client])
        if not self._closed:
            self._throttle.poke()

    def _build(self, page_size: int | None = None) -> dict[str, Any]:
        snap = self.state.snapshot(
            page=self.page,
            page_size=page_size or self.page_size,
            status=self.status_filter,
            text=self.text_filter,
            now=time.time(),
            expected_end=self.session.expected_end,
            read_only=self.session.read_only,
        )
        ids = [row["id"] for row in snap["rows"]]
        judged = self.session.marks_of(ids) if ids else {}  # seen at the board's next redraw
        for row in snap["rows"]:
            marks = judged.get(row["id"])
            row["rating"] = marks.rating if marks else None
            row["verdict"] = marks.verdict if marks else None
        return snap

    def flush(self) -> dict[str, Any]:
        """Send the board's state now (pending changes included); returns it. Tests and scripts may call it."""
        self._throttle.cancel()  # this snapshot carries what a pending one would have
        with self._lock:
            snapshot = self._build()
        if not self._closed:
            self.snapshot = snapshot
            self.snapshots_sent += 1
        return snapshot

    def _view_changed(self, change: dict[str, Any]) -> None:
        if change["name"] == "status_filter" and change["new"] not in FILTERS:
            self.message = f"no status filter {html.escape(str(change['new']))!r}: showing all"
            self.status_filter = "all"
            return
        if change["name"] != "page" and self.page:
            self.page = 0  # a new filter starts on its first page (and flushes through this observer)
            return
        self.flush()

    # --- browser -> kernel ------------------------------------------------------------------------

    def handle_message(self, content: dict[str, Any]) -> Any:
        """Act on a message from the front end: ``{"action": "cancel", "run": id}``, ``cancel_sweep`` with
        ``"sweep"``, or ``cancel_queued``."""
        action = content.get("action") if isinstance(content, dict) else None
        if action == "cancel":
            return self.cancel(str(content.get("run")))
        if action == "cancel_sweep":
            return self.cancel_sweep(str(content.get("sweep")))
        if action == "cancel_queued":
            return self.cancel_queued()
        self.message = f"the board does not know the action {html.escape(str(action))!r}"
        return None

    # --- actions ----------------------------------------------------------------------------------

    def cancel(self, run_id: str) -> str:
        """Cancel one run; says plainly when the service can no longer cancel it.

        Clicked in Jupyter, this runs on the kernel's loop, which must not block: the cancel is
        scheduled there and ``requested`` returned. Called from a script, it waits for the outcome.
        """
        shown = self.state.runs.get(run_id)
        if shown is None:
            self.message = f"no run <code>{html.escape(run_id[:12])}</code> on this board"
            return "unknown_run"
        (run,) = self._mine([shown]) or (None,)
        if run is None:
            self.message = (
                f"run <code>{html.escape(run_id)}</code> was read back from the ledger and no client here watches it: "
                "<code>client.resume()</code> takes over your runs whose kernel is gone, then it can be cancelled"
            )
            return "read_only"
        if loop_running():
            self.message = f"cancelling run <code>{html.escape(run_id)}</code>…"  # answered at once, then the outcome
            self._runner.spawn(self._cancel_async([run]))
            return "requested"
        outcome = run.cancel()
        self._report({run.id: outcome})
        return outcome

    def cancel_sweep(self, sweep_id: str) -> dict[str, str]:
        """Cancel every run of a sweep that is still queued (the rest finish and are charged)."""
        runs = self._mine(self.state.sweep_runs(sweep_id))
        return self._cancel_many([r for r in runs if r.cancellable], f"sweep <code>{html.escape(sweep_id)}</code>")

    def cancel_queued(self) -> dict[str, str]:
        """Cancel every run still queued or not yet sent."""
        runs = self._mine(self.state.in_bucket("queued"))
        return self._cancel_many(runs, "all queued runs")

    def _mine(self, runs: list[RunCore]) -> list[Run]:
        """The board's runs that a client of its session watches, as their clients' ``Run``s (rows read back from a
        ledger are left out)."""
        out = []
        for shown in runs:
            client = self.session.client_of(shown)
            if client is not None:
                out.append(client.run(shown.id))
        return out

    def _cancel_many(self, runs: list[Run], what: str) -> dict[str, str]:
        if not runs:
            self.message = f"{what}: nothing left to cancel"
            return {}
        if loop_running():
            self.message = f"cancelling {what}…"
            self._runner.spawn(self._cancel_async(runs, what))
            return {r.id: "requested" for r in runs}
        outcomes: dict[str, str] = {}
        for client, theirs in _by_client(runs).items():
            outcomes.update(client.cancel_queued(theirs))
        self._report(outcomes, what)
        return outcomes

    async def _cancel_async(self, runs: list[Run], what: str = "") -> None:
        outcomes: dict[str, str] = {}
        try:
            if not what:  # one run's Cancel: the service says whether it can still be, as run.cancel() says it
                (run,) = runs
                outcomes[run.id] = await run.aio.cancel()
            for client, theirs in _by_client(runs if what else []).items():
                outcomes.update(await client.aio.cancel_queued([r.aio for r in theirs]))
        except SeqnbError as exc:
            self.message = f"cancel failed: {html.escape(str(exc))}"
            return
        self._report(outcomes, what)

    def _report(self, outcomes: dict[str, str], what: str = "") -> None:
        if not what and len(outcomes) == 1:
            ((run_id, outcome),) = outcomes.items()
            label = f"run <code>{html.escape(run_id)}</code>"
            if outcome == "cancelled":
                self.message = f"{label} cancelled; nothing is charged for it"
            elif outcome == "not_cancellable":
                self.message = (
                    f"{label} is already running: the service cannot cancel it; it will finish and be charged"
                )
            else:
                self.message = f"{label}: {html.escape(outcome)}"
        else:
            cancelled = sum(o == "cancelled" for o in outcomes.values())
            running = sum(o == "not_cancellable" for o in outcomes.values())
            failed = len(outcomes) - cancelled - running
            text = f"{what}: {cancelled} cancelled (not charged)"
            if running:
                text += f", {running} already running (they will finish and be charged)"
            if failed:
                text += f", {failed} could not be cancelled (see their rows)"
            self.message = text
        self.flush()

    def close(self) -> None:
        """Stop following the client and close the widget."""
        self._closed = True
        self._throttle.cancel()
        self._unsubscribe()
        super().close()


def _by_client(runs: list[Run]) -> dict[Client, list[Run]]:
    groups: dict[Client, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.client, []).append(run)
    return groups
