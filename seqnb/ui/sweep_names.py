"""Sweeps as a person picks them: by when they started, what their prompts say and what they vary, not by their ids.

The Gallery's matrix picker and the Ledger tab's Sweep filter both offer ``SweepNames.options``: a sweep the
kernel holds is named from its runs, any other from the ledger's grouped facts (``Ledger.sweep_facts``, read
once per sweep and kept).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from functools import partial

from ..errors import SeqnbError
from ..ledger.facade import Ledger
from ..ledger.reads import SweepFacts
from ..model.labels import sweep_label, sweep_label_of
from ..runs.run import RunCore

__all__ = ["SweepNames", "when"]


def when(epoch: float, now: float | None = None) -> str:
    """A time of day in the kernel's zone, ``14:02``; with the date when it is not today, ``Mar 03 14:02``."""
    if not epoch:
        return "?"
    then, today = time.localtime(epoch), time.localtime(now if now is not None else time.time())
    same_day = (then.tm_year, then.tm_yday) == (today.tm_year, today.tm_yday)
    return time.strftime("%H:%M" if same_day else "%b %d %H:%M", then)


class SweepNames:
    """The names of sweeps for a picker (the ledger's facts about a sweep are read once, then kept)."""

    def __init__(self, ledger: Ledger | None) -> None:
        self.ledger = ledger
        self._facts: dict[str, SweepFacts] = {}
        self._labels: dict[tuple[str, int], str] = {}
        """Each sweep's label by its id and run count: a label compares every prompt, too dear for every refresh."""

    def options(self, sweep_ids: Sequence[str], runs: Sequence[RunCore] = ()) -> list[tuple[str, str]]:
        """``(name, sweep id)`` for each sweep: ``14:02 · Generate 3 images of… (watercolour / ink / oil paint) ·
        3 prompts × 4 seeds × 2 models · 24 runs``; ``runs`` are runs the kernel holds (named from themselves)."""
        held: dict[str, list[RunCore]] = {}
        wanted = set(sweep_ids)
        for run in runs:
            if run.sweep_id is not None and run.sweep_id in wanted:
                held.setdefault(run.sweep_id, []).append(run)
        self._read([i for i in sweep_ids if i not in held and i not in self._facts])
        out = []
        for sweep in sweep_ids:
            mine = held.get(sweep)
            facts = self._facts.get(sweep)
            if mine:
                started, n = min(r.created_at for r in mine), len(mine)
                label = self._label(sweep, n, partial(sweep_label_of, [r.request for r in mine]))
            elif facts is not None:
                started, n = facts.started, facts.runs
                label = self._label(sweep, n, partial(sweep_label, facts.prompts, facts.varies))
            else:
                out.append((sweep, sweep))
                continue
            out.append((f"{when(started)} · {label} · {n} run{'s' if n != 1 else ''}", sweep))
        return out

    def _label(self, sweep: str, runs: int, make: Callable[[], str]) -> str:
        key = (sweep, runs)
        if key not in self._labels:
            self._labels[key] = make()
        return self._labels[key]

    def _read(self, sweep_ids: list[str]) -> None:
        if not sweep_ids or self.ledger is None:
            return
        with contextlib.suppress(SeqnbError):  # named by their ids, never a picker that fails
            self._facts.update(self.ledger.sweep_facts(sweep_ids))
