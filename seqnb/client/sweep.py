"""``Sweep``: what a sweep (or a promote) returns: its runs, in the plan's order, and its plan."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..model.sweep import SweepPlan

__all__ = ["Sweep"]


class Sweep(list[Any]):
    """The runs of one sweep, with its plan (counts and estimated cost)."""

    def __init__(self, runs: Iterable[Any], plan: SweepPlan) -> None:
        super().__init__(runs)
        self.plan = plan
        self.id = plan.id

    def __repr__(self) -> str:
        states = Counter(run.status for run in self)
        return f"<Sweep {self.plan.summary()}; " + ", ".join(f"{n} {s}" for s, n in sorted(states.items())) + ">"
