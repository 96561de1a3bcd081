"""The ledger view: filter the runs, select some to compare (grid and table), re-run with a new seed."""

from __future__ import annotations

import html
import random
from typing import Any

import ipywidgets as w
import pandas as pd

from ..client import Client
from ..gallery import Gallery
from ..ledger import Ledger
from ..runs import Run
from ..spec import models

__all__ = ["LedgerView"]

_ANY = "(any)"


class LedgerView(w.VBox):
    """Filters over the ledger, a selectable list of runs, and their comparison."""

    def __init__(self, ledger: Ledger, client: Client | None = None, gallery: Gallery | None = None) -> None:
        self.ledger = ledger
        self.client = client
        self.gallery = gallery
        self.frame = pd.DataFrame()
        self.model = w.Dropdown(options=[_ANY] + [m.short_name for m in models()], description="Model")
        self.status = w.Dropdown(
            options=[_ANY, "completed", "in_queue", "in_progress", "failed", "cancelled", "unknown", "lost"],
            description="Status",
        )
        self.text = w.Text(description="Prompt has", continuous_update=False)
        self.sweep = w.Dropdown(options=[_ANY], description="Sweep")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.selection = w.SelectMultiple(rows=10, layout=w.Layout(width="100%"))
        self.compare_table = w.HTML()
        self.compare_box = w.VBox()
        self.spend = w.HTML()
        self.rerun_button = w.Button(description="Re-run with a new seed", icon="random", disabled=True)
        self.message = w.HTML()
        for control in (self.model, self.status, self.text, self.sweep):
            control.observe(lambda _: self.refresh(), "value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.selection.observe(lambda _: self.show_selected(), "value")
        self.rerun_button.on_click(lambda _: self.rerun_selected())
        super().__init__(
            [
                w.HBox([self.model, self.status]),
                w.HBox([self.text, self.sweep, self.refresh_button]),
                self.spend,
                self.selection,
                w.HBox([self.rerun_button, self.message]),
                self.compare_table,
                self.compare_box,
            ]
        )
        self.refresh()

    def filters(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.model.value != _ANY:
            out["model"] = self.model.value
        if self.status.value != _ANY:
            out["status"] = self.status.value
        if self.sweep.value != _ANY:
            out["sweep"] = self.sweep.value
        if self.text.value.strip():
            out["text"] = self.text.value.strip()
        return out

    def refresh(self) -> pd.DataFrame:
        """Re-read the ledger with the current filters."""
        current = self.sweep.value
        self.sweep.options = [_ANY, *self.ledger.sweeps()]
        self.sweep.value = current if current in self.sweep.options else _ANY
        frame = self.ledger.runs(**self.filters(), limit=500)
        self.frame = frame
        options = []
        records: list[dict[Any, Any]] = frame.to_dict("records")
        for row in records:
            seed = "-" if pd.isna(row["seed"]) else row["seed"]
            score = "" if pd.isna(row["consistency"]) else f" · consistency {row['consistency']:.2f}"
            prompt = str(row["prompt"])[:50]
            label = f"{str(row['id'])[:8]} {row['status']} · seed {seed} · {row['size']} · {prompt}{score}"
            options.append((label, str(row["id"])))
        self.selection.options = options
        spend = self.ledger.spend("model", **self.filters()) if len(frame) else pd.DataFrame()
        self.spend.value = spend.to_html(index=False, float_format=lambda x: f"{x:.2f}") if len(spend) else "no runs"
        return frame

    def show_selected(self) -> None:
        """Compare the selected runs: the parameters that differ and the outcomes, then their grid."""
        ids = list(self.selection.value)
        self.rerun_button.disabled = len(ids) != 1 or self.client is None
        if not ids:
            self.compare_table.value = ""
            self.compare_box.children = []
            return
        table = self.ledger.compare(ids)
        self.compare_table.value = table.to_html(float_format=lambda x: f"{x:.2f}")
        runs = [self.ledger.restore(i) for i in ids]
        completed = [r for r in runs if r.status == "completed"]
        if completed:
            gallery = self.gallery or Gallery(ledger=self.ledger)
            self.compare_box.children = [gallery.grid(completed, size=128)]
        else:
            self.compare_box.children = [w.HTML("<i>no completed run selected: nothing to show yet</i>")]

    def rerun_selected(self, seed: int | None = None) -> Run | None:
        """Submit the selected run again with a new seed, linked to it in the ledger."""
        ids = list(self.selection.value)
        if len(ids) != 1 or self.client is None:
            self.message.value = "select exactly one run to re-run"
            return None
        new_seed = seed if seed is not None else random.randint(0, 2**31 - 1)
        run = self.client.rerun(ids[0], seed=new_seed)
        self.message.value = (
            f"re-running <code>{html.escape(ids[0][:8])}</code> with seed {new_seed} as <code>{run.id[:8]}</code>"
        )
        return run
