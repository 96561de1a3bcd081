"""The ledger view: filter the runs, a page at a time, select some to compare (grid and table), re-run with a new seed.

The table comes from one query with a limit and an offset (and one count), never the whole ledger,
so it opens at once on a ledger of any size. Images of selected runs that are not downloaded yet are
fetched on the client's loop; the view shows them when they are in, and never blocks.
"""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import Sequence
from typing import Any

import ipywidgets as w
import pandas as pd

from .._loop import LoopRunner
from ..client.sync import Client, Run
from ..images.fallback import HtmlBudget, StaticFallback
from ..images.gallery import Gallery
from ..images.grid import grid
from ..ledger.facade import Ledger
from ..model.labels import filled_labels, named_with
from ..model.request import Request
from ..model.seeds import fresh_seed
from ..model.spec import models
from ..runs.run import RunCore
from .closing import close_tree, replace_children
from .sweep_names import SweepNames

__all__ = ["LedgerView"]

_ANY = "(any)"
SPEND_LIMIT = 20_000
"""Above this many matching runs the spend is totalled only when asked: ``spend()`` reads a few columns
of every matching row, ~0.1 s per 20,000 rows here (``python benchmarks/ledger.py``)."""


STATIC_COLUMNS = [
    "label",
    "status",
    "model",
    "seed",
    "size",
    "returned",
    "consistency",
    "est_cost",
    "currency",
    "prompt",
    "id",
]
"""The columns of the page of runs a saved notebook shows."""


class LedgerView(StaticFallback, w.VBox):
    """Filters over the ledger, a page of runs to select from, and their comparison."""

    def __init__(
        self,
        ledger: Ledger,
        client: Client | None = None,
        gallery: Gallery | None = None,
        *,
        page_size: int = 50,
        visible: bool = True,
    ) -> None:
        self.ledger = ledger
        self.client = client
        self.gallery = gallery
        self.page_size = page_size
        self.page = 0
        self.matching = 0
        self.visible = visible
        self.stale = True
        self.frame = pd.DataFrame()
        self._refreshing = False
        self._shown = 0  # bumped per selection: a grid fetched for an older selection is dropped
        self.model = w.Dropdown(options=[_ANY] + [m.short_name for m in models()], description="Model")
        self.status = w.Dropdown(
            options=[_ANY, "completed", "in_queue", "in_progress", "failed", "cancelled", "unknown", "lost"],
            description="Status",
        )
        self.text = w.Text(description="Prompt has", continuous_update=False)
        self.sweep = w.Dropdown(options=[_ANY], description="Sweep", layout=w.Layout(width="520px"))
        self._sweep_names = SweepNames(ledger)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.prev_button = w.Button(description="newer", icon="chevron-left", layout=w.Layout(width="90px"))
        self.next_button = w.Button(description="older", icon="chevron-right", layout=w.Layout(width="90px"))
        self.page_label = w.HTML()
        self.selection = w.SelectMultiple(rows=12, layout=w.Layout(width="100%"))
        self.prompts = w.HTML()
        """The whole prompts of the selected runs (a list cannot show each option's prompt on hover)."""
        self.compare_table = w.HTML()
        self.compare_box = w.VBox()
        self.spend = w.HTML()
        self.spend_button = w.Button(description="Total the spend", icon="calculator", layout=w.Layout(display="none"))
        self.rerun_button = w.Button(description="Re-run with a new seed", icon="random", disabled=True)
        self.message = w.HTML()
        for control in (self.model, self.status, self.text, self.sweep):
            control.observe(lambda _: self._filters_changed(), "value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.prev_button.on_click(lambda _: self.turn(-1))
        self.next_button.on_click(lambda _: self.turn(1))
        self.spend_button.on_click(lambda _: self.show_spend())
        self.selection.observe(lambda _: self.show_selected(), "value")
        self.rerun_button.on_click(lambda _: self.rerun_selected())
        super().__init__(
            [
                w.HBox([self.model, self.status]),
                w.HBox([self.text, self.sweep, self.refresh_button]),
                w.HBox([self.spend, self.spend_button]),
                w.HBox([self.prev_button, self.page_label, self.next_button]),
                self.selection,
                w.HBox([self.rerun_button, self.message]),
                self.prompts,
                self.compare_table,
                self.compare_box,
            ]
        )
        if visible:
            self.refresh()

    def filters(self) -> dict[str, Any]:
        chosen = {"model": self.model.value, "status": self.status.value, "sweep": self.sweep.value}
        out: dict[str, Any] = {key: value for key, value in chosen.items() if value != _ANY}
        if self.text.value.strip():
            out["text"] = self.text.value.strip()
        return out

    def _filters_changed(self) -> None:
        if not self._refreshing:
            self.page = 0
            self.refresh()

    def show(self, visible: bool = True) -> None:
        """Say whether the view is on screen; a view shown again catches up once."""
        self.visible = visible
        if visible and self.stale:
            self.refresh()

    def turn(self, step: int) -> pd.DataFrame:
        """Go ``step`` pages older (negative: newer)."""
        self.page = max(0, self.page + step)
        return self.refresh(full=False)

    def refresh(self, full: bool = True) -> pd.DataFrame:
        """Re-read the current page with the current filters (``full``: the sweep list and the spend too)."""
        self.stale = False
        self._refreshing = True
        try:
            if full:
                current = self.sweep.value
                recent = self.ledger.recent_sweeps()  # by index: a million runs cost what a thousand do
                ids = [*recent, *([current] if current not in (_ANY, *recent) else [])]
                live = self.client.aio.runs() if self.client is not None else []
                self.sweep.options = [(_ANY, _ANY), *self._sweep_names.options(ids, live)]
                self.sweep.value = current if current in (_ANY, *ids) else _ANY
            filters = self.filters()
            self.matching = self.ledger.count(**filters)
            pages = max(1, -(-self.matching // self.page_size))
            self.page = min(self.page, pages - 1)
            frame = self.ledger.runs(**filters, limit=self.page_size, offset=self.page * self.page_size)
        finally:
            self._refreshing = False
        self.frame = frame
        first = self.page * self.page_size
        self.page_label.value = (
            f"runs {first + 1}–{first + len(frame)} of {self.matching:,}" if len(frame) else "no runs match"
        )
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page + 1 >= pages
        options = []
        records: list[dict[Any, Any]] = frame.to_dict("records")
        row_names = row_labels(records)
        self.frame["label"] = row_names
        for row, label in zip(records, row_names, strict=True):
            seed = "-" if pd.isna(row["seed"]) else row["seed"]
            score = "" if pd.isna(row["consistency"]) else f" · colour/layout {row['consistency']:.2f}"
            judged = ("" if pd.isna(row["rating"]) else f" · ★{row['rating']}") + (
                "" if pd.isna(row["verdict"]) else f" · {'✔' if row['verdict'] == 'picked' else '✘'} {row['verdict']}"
            )  # the current user's marks (``Ledger.mark``)
            named = named_with(label, str(row["model"]), f"seed {seed}")  # rows of several sweeps side by side
            shown = f"{named} · {row['status']}{judged}{score} · {row['id']}"
            options.append((shown, str(row["id"])))
        before = tuple(self.selection.value)
        keep = tuple(v for v in before if v in {value for _, value in options})
        if options != list(self.selection.options):
            self._refreshing = True
            try:
                self.selection.options = options
                self.selection.value = keep
            finally:
                self._refreshing = False
            if keep != before:
                self.show_selected()
        if full:
            if self.matching <= SPEND_LIMIT:
                self.show_spend()
            else:
                self.spend.value = f"{self.matching:,} runs match: their spend is totalled when you ask"
                self.spend_button.layout.display = ""
        return frame

    def show_spend(self) -> pd.DataFrame:
        """Total the estimated spend of the runs that match the filters (reads every matching row)."""
        spend = self.ledger.spend("model", **self.filters()) if self.matching else pd.DataFrame()
        self.spend.value = spend.to_html(index=False, float_format=lambda x: f"{x:.2f}") if len(spend) else "no runs"
        self.spend_button.layout.display = "none"
        return spend

    def show_selected(self) -> None:
        """Compare the selected runs: the parameters that differ and the outcomes, then their grid."""
        if self._refreshing:
            return
        self._shown += 1
        ids = list(self.selection.value)
        self.rerun_button.disabled = len(ids) != 1 or self.client is None
        if not ids:
            self.prompts.value = ""
            self.compare_table.value = ""
            replace_children(self.compare_box, [])
            return
        self.prompts.value = self.prompts_html(ids)
        table = self.ledger.compare(ids)
        self.compare_table.value = table.to_html(float_format=lambda x: f"{x:.2f}")
        completed = [r for r in (self.ledger.restore(i) for i in ids) if r.status == "completed"]
        if not completed:
            replace_children(self.compare_box, [w.HTML("<i>no completed run selected: nothing to show yet</i>")])
            return
        gallery = self.gallery or Gallery(ledger=self.ledger)
        missing = [r for r in completed if not gallery.ready(r)]
        if not missing or self.client is None:
            replace_children(self.compare_box, [grid(gallery, completed, size=128)])
        else:
            replace_children(self.compare_box, [w.HTML(f"<i>fetching the images of {len(missing)} run(s)…</i>")])
            LoopRunner().spawn(self._fetch_then_show(gallery, completed, missing, self._shown))

    def prompts_html(self, ids: list[str]) -> str:
        """The selected runs' labels with their whole prompts (the list shows labels only), as escaped HTML."""
        rows = self.frame.set_index("id") if len(self.frame) else None
        lines = []
        for run_id in ids[:20]:
            if rows is None or run_id not in rows.index:
                continue
            row = rows.loc[run_id]
            lines.append(
                f"<div><b>{html.escape(str(row['label']))}</b> <span style='color:#555'>"
                f"{html.escape(str(row['prompt']))}</span></div>"
            )
        more = f"<div><i>and {len(ids) - 20} more</i></div>" if len(ids) > 20 else ""
        return "".join(lines) + more

    async def _fetch_then_show(
        self, gallery: Gallery, runs: Sequence[RunCore], missing: Sequence[RunCore], shown: int
    ) -> None:
        await asyncio.gather(*(gallery.download(r) for r in missing), return_exceptions=True)
        if shown != self._shown:
            return  # the selection changed meanwhile
        replace_children(self.compare_box, [grid(gallery, runs, size=128)])

    def rerun_selected(self, seed: int | None = None) -> Run | None:
        """Submit the selected run again with a new seed, linked to it in the ledger."""
        ids = list(self.selection.value)
        if len(ids) != 1 or self.client is None:
            self.message.value = "select exactly one run to re-run"
            return None
        new_seed = seed if seed is not None else fresh_seed()
        run = self.client.rerun(ids[0], seed=new_seed)
        self.message.value = (
            f"re-running <code>{html.escape(ids[0])}</code> with seed {new_seed} as <code>{run.id}</code>"
        )
        return run

    def static_html(self, budget: HtmlBudget | None = None) -> str:
        """The page of runs, the spend, the comparison and its grid as HTML (escaped), for saved notebooks."""
        budget = budget or HtmlBudget()
        page = self.frame[[c for c in STATIC_COLUMNS if c in self.frame]] if len(self.frame) else None
        parts = [
            f"<p><b>{html.escape(self.page_label.value)}</b></p>",
            self.spend.value
            if self.spend.value.lstrip().startswith("<table")
            else f"<p>{html.escape(self.spend.value)}</p>",
            page.to_html(index=False, na_rep="", float_format=lambda x: f"{x:.2f}") if page is not None else "",
            self.compare_table.value,
        ]
        out = budget.text("".join(parts))
        for child in self.compare_box.children:
            if isinstance(child, StaticFallback):
                out += child.static_html(budget)
        return out

    def static_text(self) -> str:
        return f"<seqnb ledger view: {html.escape(self.page_label.value)}>"

    def close(self) -> None:
        """Close the view and everything it shows."""
        close_tree(list(self.children))
        super().close()


def row_labels(records: list[dict[Any, Any]]) -> list[str]:
    """The ``label`` of each ledger row; a row written before labels is labelled by its differing words among the rows
    of its sweep on the page (``seqnb.model.labels.filled_labels``)."""
    out: list[str] = []
    unlabelled: list[tuple[int, Request, str | None]] = []
    for i, row in enumerate(records):
        label = "" if pd.isna(row.get("label")) else str(row.get("label") or "")
        out.append(label)
        if label:
            continue
        try:
            request = Request.from_payload(str(row["model"]), json.loads(str(row["payload"])))
        except (ValueError, TypeError, KeyError):
            out[i] = str(row.get("prompt") or row.get("id"))[:80]  # a row another tool wrote: its prompt
            continue
        sweep = row.get("sweep_id")
        unlabelled.append((i, request, None if pd.isna(sweep) else str(sweep)))
    named = filled_labels([("", request, sweep) for _, request, sweep in unlabelled])
    for (i, _, _), label in zip(unlabelled, named, strict=True):
        out[i] = label
    return out
