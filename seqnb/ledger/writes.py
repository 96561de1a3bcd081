"""Runs' rows into the store: one transaction for many, each checked against the team budget when new."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ..runs.run import RunCore
from .budget import TeamBudget
from .schema import UPSERT_RUN, run_values
from .stores import Store

__all__ = ["write_rows"]

_UPSERT_IMAGE = (
    "INSERT INTO images (run_id, idx, url) VALUES (?, ?, ?) "
    "ON CONFLICT(run_id, idx) DO UPDATE SET url=excluded.url WHERE images.path IS NULL"
)


def write_rows(store: Store, budget: TeamBudget, rows: Sequence[tuple[RunCore, dict[str, Any]]]) -> list[bool]:
    """Upsert runs' rows (and a completed run's image URLs) in one transaction; per run, whether it was written
    (False: another session owns it now). A new run (``created``) is checked against the team budget first."""
    written: list[bool] = []
    what = f"record run {rows[0][0].id}" if len(rows) == 1 else f"record {len(rows)} runs"
    with store.guard(what), store.transaction():
        for run, row in rows:
            if row["status"] == "created" and not budget.reserving:
                cost = {row["currency"]: Decimal(row["est_cost"])}
                budget.check(cost, row["backend"], f"run {run.id}", exclude=run.id)
            done = bool(store.execute(UPSERT_RUN, run_values(row)).rowcount)
            if done and run.status == "completed" and run.images:
                store.executemany(_UPSERT_IMAGE, [(run.id, i, url) for i, url in enumerate(run.images)])
            written.append(done)
    return written
