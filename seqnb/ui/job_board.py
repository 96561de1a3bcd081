"""The job board: a live row per run, moved by the poller's events on the kernel's own loop.

Rows change widget values only, from event callbacks that run on the client's loop (the kernel's,
in Jupyter): never by printing into an Output from a background task, never from another thread.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections import Counter

import ipywidgets as w

from ..client import Client
from ..runs import Run, RunEvent

__all__ = ["JobBoard"]

_BAR = {
    "created": (0.05, "info"),
    "submitting": (0.1, "info"),
    "in_queue": (0.25, "info"),
    "in_progress": (0.6, ""),
    "completed": (1.0, "success"),
    "failed": (1.0, "danger"),
    "cancelled": (1.0, "warning"),
    "unknown": (1.0, "warning"),
    "lost": (1.0, "danger"),
}


class _Row:
    def __init__(self, board: JobBoard, run: Run) -> None:
        self.run = run
        request = run.request
        label = f"<code>{run.id[:8]}</code> {request.model.short_name} · seed {request.seed} · {request.count} img"
        prompt = html.escape((request.prompt or "")[:60])
        self.label = w.HTML(f"{label}<br><span style='color:#666'>{prompt}</span>", layout=w.Layout(width="360px"))
        self.bar = w.FloatProgress(min=0, max=1, layout=w.Layout(width="180px"))
        self.state = w.HTML(layout=w.Layout(width="260px"))
        self.elapsed = w.HTML(layout=w.Layout(width="60px"))
        self.cancel = w.Button(description="Cancel", layout=w.Layout(width="80px"))
        self.cancel.on_click(lambda _: board.cancel(run.id))
        self.box = w.HBox([self.label, self.bar, self.state, self.elapsed, self.cancel])
        self.update()

    def update(self) -> None:
        run = self.run
        fraction, style = _BAR.get(run.status, (0.0, ""))
        self.bar.value = fraction
        self.bar.bar_style = style
        text = run.status.replace("_", " ")
        if run.status == "in_queue" and run.queue_position is not None:
            text += f" (#{run.queue_position + 1})"
        if run.status == "completed":
            text += f" · {len(run.images)}/{run.requested} images"
        note = run.error or run.aio.note
        if note:
            text += f"<br><span style='color:#8a6d00;font-size:smaller'>{html.escape(note[:160])}</span>"
        self.state.value = text
        self.cancel.disabled = not run.cancellable
        self.tick()

    def tick(self) -> None:
        run = self.run
        end = run.finished_at or time.time()
        self.elapsed.value = f"{end - run.created_at:5.1f} s"


class JobBoard(w.VBox):
    """Every run of a client, with status bars, elapsed time, Cancel, and a session summary."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.rows: dict[str, _Row] = {}
        self._counts: Counter[str] = Counter()
        self.summary = w.HTML()
        self.message = w.HTML()
        self.cancel_all = w.Button(description="Cancel all queued", icon="ban")
        self.cancel_all.on_click(lambda _: self.cancel_queued())
        self.list = w.VBox()
        super().__init__([w.HBox([self.summary, self.cancel_all]), self.list, self.message])
        self._ticker: asyncio.Task[None] | None = None
        client.subscribe(self._on_event)
        for run in client.runs():
            self.add(run)

    def _on_event(self, event: RunEvent) -> None:
        run = self.client.wrap(event.run)  # type: ignore[arg-type]
        row = self.rows.get(run.id)
        if row is None:
            self.add(run)
        else:
            if event.old != event.new:
                self._counts[event.old] -= 1
                self._counts[event.new] += 1
            row.update()
        self._summarise()
        self._ensure_ticker()

    def add(self, run: Run) -> None:
        """Show a run (idempotent)."""
        if run.id in self.rows:
            return
        row = _Row(self, run)
        self.rows[run.id] = row
        self._counts[run.status] += 1
        self.list.children = (row.box, *self.list.children)
        self._summarise()

    def _summarise(self) -> None:
        # Counts are kept up to date from the events (see _on_event): no pass over every row per event.
        parts = [f"{n} {s.replace('_', ' ')}" for s, n in sorted(self._counts.items()) if n]
        self.summary.value = f"<b>{len(self.rows)} runs</b>: " + (", ".join(parts) or "none yet")
        self.cancel_all.disabled = not any(self._counts[s] for s in ("created", "submitting", "in_queue"))

    def _ensure_ticker(self) -> None:
        """Keep elapsed times moving, on the loop, while any run is active."""
        if self._ticker is not None and not self._ticker.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._ticker = loop.create_task(self._tick())

    async def _tick(self) -> None:
        while any(not r.run.done for r in self.rows.values()):
            for row in self.rows.values():
                if not row.run.done:
                    row.tick()
            await asyncio.sleep(1.0)

    # --- actions ----------------------------------------------------------------------------

    def cancel(self, run_id: str) -> str:
        """Cancel one run; says plainly when the service can no longer cancel it.

        Clicked in Jupyter, this runs on the kernel's loop, which must not block: the cancel is
        scheduled there and ``requested`` returned. Called from a script, it waits for the outcome.
        """
        row = self.rows[run_id]
        row.cancel.disabled = True
        if _loop_running():

            async def go() -> None:
                self._report(row, await row.run.aio.cancel())

            asyncio.get_running_loop().create_task(go())
            return "requested"
        outcome = row.run.cancel()
        self._report(row, outcome)
        return outcome

    def _report(self, row: _Row, outcome: str) -> None:
        if outcome == "not_cancellable":
            self.message.value = (
                f"run <code>{row.run.id[:8]}</code> is already running: the service cannot cancel it; "
                "it will finish and be charged"
            )
        elif outcome == "cancelled":
            self.message.value = f"run <code>{row.run.id[:8]}</code> cancelled; nothing is charged for it"
        row.update()
        self._summarise()

    def cancel_queued(self) -> dict[str, str]:
        """Cancel every run that is still queued or not yet sent."""
        targets = [row for row in self.rows.values() if row.run.cancellable]
        return {row.run.id: self.cancel(row.run.id) for row in targets}


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False
