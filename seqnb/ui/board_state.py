"""The job board's state, I/O-free: counts per sweep and per status kept up to date per event, and a snapshot
of bounded size (the recent sweeps, one page of runs) whatever the number of runs.

Every event costs O(1); a snapshot costs O(page size + sweeps shown), except with a text filter,
which scans the runs once.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..model.labels import labels, says, sweep_label_of
from ..model.pricing import Cost, format_money
from ..runs.run import RunCore

__all__ = ["BUCKETS", "COLOURS", "FILTERS", "VOCABULARY", "BoardState", "bucket_of"]

BUCKETS: tuple[str, ...] = ("queued", "in_progress", "completed", "failed", "cancelled", "unknown")
"""How the board groups the run states (the order of the aggregate bar)."""
COLOURS: dict[str, str] = {
    "queued": "#90caf9",
    "in_progress": "#1e88e5",
    "completed": "#43a047",
    "failed": "#e53935",
    "cancelled": "#fb8c00",
    "unknown": "#9e9e9e",
}
"""The colour of each group on the bars and pills."""

_BUCKET = {
    "created": "queued",
    "submitting": "queued",
    "in_queue": "queued",
    "in_progress": "in_progress",
    "completed": "completed",
    "failed": "failed",
    "lost": "failed",
    "cancelled": "cancelled",
    "unknown": "unknown",
}
_ACTIVE_BUCKETS = frozenset({"queued", "in_progress"})
FILTERS: tuple[str, ...] = ("all", "active", *BUCKETS)
"""The status filters the board offers."""
VOCABULARY: dict[str, Any] = {"buckets": list(BUCKETS), "filters": list(FILTERS), "colours": COLOURS}
"""The names the front end draws with, sent in the widget's state: ``static/board.js`` has no copy of them."""


def bucket_of(status: str) -> str:
    """The board's group for a run state (``lost`` counts as failed)."""
    return _BUCKET.get(status, "unknown")


@dataclass
class SweepTally:
    """One sweep's aggregate, moved per event."""

    id: str
    created_at: float
    runs: dict[str, RunCore] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    images: int = 0
    """Images returned so far."""
    requested: int = 0
    charged: dict[str, Decimal] = field(default_factory=dict)
    """Spend of the ended runs, per currency: what the service said it charged, else the estimate of a completed run."""
    estimated: int = 0
    """Runs counted in ``charged`` at their estimate (the service did not say what it charged)."""
    said: int = 0
    """Runs counted in ``charged`` at what the service said it charged."""
    latest: dict[tuple[str, int], RunCore] = field(default_factory=dict)
    """Per kind of run, the one submitted last: it should end last (the ETA)."""
    label: str = ""
    """What the sweep is (``seqnb.model.labels.sweep_label``), made when first shown and again when it grows."""
    labelled: int = 0
    """How many runs the sweep had when ``label`` was made."""


class BoardState:
    """Every run of a session, grouped for a board that shows a bounded page of them."""

    def __init__(self, *, sweeps_shown: int = 5, prices: Any = None, simulated: bool = False) -> None:
        self.sweeps_shown = sweeps_shown
        self.prices = prices
        self.simulated = simulated
        """True on seqnb's emulator: the spend is simulated, nothing is charged."""
        self.runs: dict[str, RunCore] = {}
        self.counts: Counter[str] = Counter()
        self.sweeps: dict[str, SweepTally] = {}
        self._bucket: dict[str, str] = {}
        self._images: dict[str, int] = {}
        self._counted: dict[str, tuple[str, Decimal, bool]] = {}
        """What each run adds to its sweep's spend: currency, amount, and whether that is an estimate."""
        self._members: dict[str, dict[str, None]] = {b: {} for b in BUCKETS}
        """Run ids per group, in the order they entered it (``dict`` as an ordered set)."""
        self._active: dict[str, None] = {}
        self._finished: dict[str, None] = {}

    # --- per event, O(1) ------------------------------------------------------------------------

    def update(self, run: RunCore) -> None:
        """Take in a run's current state (new or changed)."""
        new = bucket_of(run.status)
        old = self._bucket.get(run.id)
        tally = self._tally(run)
        self.runs[run.id] = run  # a row read back may be replaced by the same run resumed by a client
        if tally is not None:
            tally.runs[run.id] = run
        if old is None and tally is not None:
            tally.requested += run.requested
        images = len(run.images) if run.status == "completed" else 0
        if tally is not None:
            if run.submitted_at is not None:
                latest = tally.latest.get(run.kind)
                if latest is None or (latest.submitted_at or 0) <= run.submitted_at:
                    tally.latest[run.kind] = run
            tally.images += images - self._images.get(run.id, 0)
            self._count_spend(tally, run)
        self._images[run.id] = images
        if old == new:
            return
        self._bucket[run.id] = new
        self.counts[new] += 1
        self._members[new][run.id] = None
        if old is not None:
            self.counts[old] -= 1
            del self._members[old][run.id]
        if new in _ACTIVE_BUCKETS:
            self._finished.pop(run.id, None)
            self._active[run.id] = None
        else:
            self._active.pop(run.id, None)
            self._finished[run.id] = None
        if tally is not None:
            tally.counts[new] += 1
            if old is not None:
                tally.counts[old] -= 1

    def _tally(self, run: RunCore) -> SweepTally | None:
        if run.sweep_id is None:
            return None
        tally = self.sweeps.get(run.sweep_id)
        if tally is None:
            tally = self.sweeps[run.sweep_id] = SweepTally(run.sweep_id, run.created_at)
        return tally

    def _count_spend(self, tally: SweepTally, run: RunCore) -> None:
        """Move the sweep's spend to what this run counts now: its charge once said (USD), else its estimate once completed."""
        now: tuple[str, Decimal, bool] | None = None
        if run.cost is not None:
            now = ("USD", run.cost, False)
        elif run.status == "completed" and (estimate := self._estimate(run)) is not None:
            now = (estimate.currency, estimate.amount, True)
        before = self._counted.pop(run.id, None)
        for counted, sign in ((before, -1), (now, 1)):
            if counted is not None:
                currency, amount, estimated = counted
                tally.charged[currency] = tally.charged.get(currency, Decimal(0)) + sign * amount
                tally.estimated += sign if estimated else 0
                tally.said += 0 if estimated else sign
        if now is not None:
            self._counted[run.id] = now

    def _estimate(self, run: RunCore) -> Cost | None:
        try:
            return run.request.cost(self.prices)
        except ValueError:
            return None

    # --- reading --------------------------------------------------------------------------------

    def summary(self) -> str:
        """``"12 runs: 3 in progress, 9 completed"``."""
        parts = [f"{self.counts[b]} {b.replace('_', ' ')}" for b in BUCKETS if self.counts[b]]
        return f"{len(self.runs)} runs: " + (", ".join(parts) or "none yet")

    def sweep_runs(self, sweep_id: str) -> list[RunCore]:
        tally = self.sweeps.get(sweep_id)
        return list(tally.runs.values()) if tally is not None else []

    def in_bucket(self, bucket: str) -> list[RunCore]:
        """The runs in one group (see ``BUCKETS``), in the order they entered it."""
        return [self.runs[i] for i in self._members[bucket]]

    def matching(self, status: str = "all", text: str = "") -> tuple[int, Iterator[str]]:
        """How many runs pass the filters, and their ids in board order: active ones oldest first, then the
        ended ones, last ended first."""
        if status == "all":
            total = len(self.runs)
            ordered: Iterable[str] = itertools.chain(self._active, reversed(self._finished))
        elif status == "active":
            total = len(self._active)
            ordered = iter(self._active)
        elif status in self._members:
            members = self._members[status]
            total = len(members)
            ordered = iter(members) if status in _ACTIVE_BUCKETS else reversed(members)
        else:
            raise ValueError(f"status filter {status!r}: use one of {', '.join(FILTERS)}")
        needle = text.strip().lower()
        if not needle:
            return total, iter(ordered)
        found = [
            i
            for i in ordered
            if needle in i
            or needle in (self.runs[i].request.prompt or "").lower()
            or needle in self.runs[i].label.lower()
        ]
        return len(found), iter(found)

    def snapshot(
        self,
        *,
        page: int = 0,
        page_size: int = 20,
        status: str = "all",
        text: str = "",
        now: float,
        expected_end: Callable[[RunCore], float | None] | None = None,
        read_only: Callable[[RunCore], bool] | None = None,
    ) -> dict[str, Any]:
        """What the board shows, as JSON-ready data of bounded size: a row's ``prompt`` is an index into
        ``prompts``. ``read_only`` tells the runs only shown (rows read back from a ledger, no client watching them):
        they have no Cancel."""
        total, ids = self.matching(status, text)
        pages = max(1, -(-total // page_size))
        page = min(max(0, page), pages - 1)
        shown = [self.runs[i] for i in itertools.islice(ids, page * page_size, (page + 1) * page_size)]
        rows = [self.row(run, read_only is not None and read_only(run)) for run in shown]
        prompts: dict[str, int] = {}
        for row in rows:  # each whole prompt sent once per snapshot, however many rows share it (a sweep's do)
            row["prompt"] = prompts.setdefault(row["prompt"], len(prompts))
        recent = list(itertools.islice(reversed(self.sweeps.values()), self.sweeps_shown))
        return {
            "now": now,
            "summary": self.summary(),
            "total": len(self.runs),
            "counts": {b: self.counts[b] for b in BUCKETS},
            "cancellable": self.counts["queued"],
            "sweeps": [self.sweep_row(t, now, expected_end) for t in recent],
            "sweeps_hidden": max(0, len(self.sweeps) - len(recent)),
            "rows": rows,
            "prompts": list(prompts),
            "page": page,
            "pages": pages,
            "matching": total,
        }

    def row(self, run: RunCore, read_only: bool = False) -> dict[str, Any]:
        """One run as the board's detail list shows it: its label (``run.label``), the whole prompt for hover, its
        model and seed always (runs of several models or seeds sit side by side)."""
        request = run.request
        note = run.error or run.note
        if read_only:
            left = "" if run.done else " (as its session left it: another kernel may watch it)"
            note = f"read back from the ledger{left}" + (f"; {note}" if note else "")
        label = run.label or labels([request])[0]
        model, seed = request.model.short_name, request.resolved().get("seed")
        return {
            "id": run.id,
            "label": label,
            "model": model,
            "seed": seed,
            "said": [v for v in (model, f"seed {seed}") if says(label, v)],  # what the meta line need not repeat
            "count": run.requested,
            "prompt": request.prompt or "",
            "status": run.status,
            "bucket": bucket_of(run.status),
            "position": run.queue_position,
            "queue": run.queue_text,
            "images": len(run.images) if run.status == "completed" else None,
            "note": note[:160] if note else "",
            "created": run.created_at,
            "started": run.started_at,
            "finished": run.finished_at,
            "cancellable": run.cancellable and not read_only,
            "read_only": read_only,
            "sweep": run.sweep_id,
        }

    def sweep_row(
        self, tally: SweepTally, now: float, expected_end: Callable[[RunCore], float | None] | None
    ) -> dict[str, Any]:
        """One sweep's aggregate: counts per group, images, spend so far, ETA."""
        n = len(tally.runs)
        left = tally.counts["queued"] + tally.counts["in_progress"]
        if tally.labelled != n:  # once per sweep (a sweep's runs are all made at once), again if it grows
            tally.label, tally.labelled = sweep_label_of([r.request for r in tally.runs.values()]), n
        return {
            "id": tally.id,
            "label": tally.label,
            "runs": n,
            "counts": {b: tally.counts[b] for b in BUCKETS},
            "images": tally.images,
            "requested": tally.requested,
            "spend": " + ".join(format_money(v, c) for c, v in tally.charged.items()) or "nothing yet",
            "spend_label": self._spend_label(tally),
            "left": left,
            "eta": self._eta(tally, now, expected_end) if left else None,
            "cancellable": tally.counts["queued"],
            "created": tally.created_at,
        }

    def _spend_label(self, tally: SweepTally) -> str:
        """``simulated`` (the emulator); else ``charged``, ``estimated``, or both when only some charges are said."""
        if self.simulated:
            return "simulated"
        if not tally.estimated:
            return "charged"
        return "charged + estimated" if tally.said else "estimated"

    @staticmethod
    def _eta(tally: SweepTally, now: float, expected_end: Callable[[RunCore], float | None] | None) -> float | None:
        """When the sweep should end: the later of the duration model's end for its last-sent run of each kind,
        and the pace its runs have ended at since it was sent."""
        ends = [e for e in (expected_end(r) for r in tally.latest.values()) if e is not None] if expected_end else []
        ended = sum(tally.counts[b] for b in BUCKETS if b not in _ACTIVE_BUCKETS)
        left = len(tally.runs) - ended
        if ended >= 3 and now > tally.created_at:
            ends.append(now + left * (now - tally.created_at) / ended)
        return max(ends) if ends else None
