"""Sweeps: the grid of requests (models x prompts x sizes x counts x seeds), validated and priced before anything is sent."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ..errors import BudgetExceeded, SweepInvalid
from .labels import labels as run_labels
from .pricing import Cost, PriceInput, format_money, parse_amount
from .prompt_count import stated_count
from .references import is_single
from .request import Request
from .spec import COUNT_RANGE, get_model, size_dimensions
from .validation import Problem, Report

__all__ = ["SweepPlan", "plan_sweep", "reference_sets"]


def _listify(value: Any, default: Sequence[Any]) -> list[Any]:
    if value is None:
        return list(default)
    if isinstance(value, str | int) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def reference_sets(value: Iterable[Sequence[Any]] | Sequence[Any] | Any) -> list[Sequence[Any] | None]:
    """The references axis: a list of reference lists (a flat list of references, or one, is one set); a reference is
    a URL, or a local file, a PIL image, bytes (``seqnb.model.references.is_single``)."""
    if value is None:
        return [None]
    if is_single(value):
        return [[value]]
    sets = list(value)
    if sets and all(is_single(v) for v in sets):
        return [sets]
    return [[v] if is_single(v) else list(v) for v in sets]


@dataclass
class SweepPlan:
    """What a sweep would send and cost."""

    requests: list[Request]
    reports: list[Report]
    costs: list[Cost]
    id: str = field(default_factory=lambda: "sw-" + uuid.uuid4().hex[:8])
    sent: bool = field(default=False, repr=False, compare=False)
    """Whether ``client.sweep(plan)`` sent this plan (a plan is sent once, under its own id)."""
    kind: str = field(default="sweep", compare=False)
    """What the plan is for, in its messages: ``sweep``, or ``promote`` (the picks made again)."""
    parents: list[str] | None = field(default=None, repr=False, compare=False)
    """For a promote: each request's original run id, in order (its messages name the runs by them)."""
    labels: list[str] = field(default_factory=list, repr=False, compare=False)
    """Each request's label: what tells it apart from the others of the plan (``seqnb.model.labels``)."""
    notes: list[str] = field(default_factory=list, repr=False, compare=False)
    """What the plan should say before it is sent: models compared at different sizes, and the size they share."""

    def __post_init__(self) -> None:
        if not self.labels:
            self.labels = run_labels(self.requests)
        if not self.notes:
            self.notes = size_notes(self.requests)

    def name_of(self, index: int) -> str:
        """How messages name the plan's ``index``-th request: ``run 3 (seedream-4.5)``, or its original's id."""
        model = self.requests[index].model.short_name
        if self.parents is not None:
            return f"the promote of run {self.parents[index]} ({model})"
        return f"run {index + 1} ({model})"

    @property
    def runs(self) -> int:
        return len(self.requests)

    @property
    def images(self) -> int:
        """Images requested in all (the count each run is billed on)."""
        return sum(r.count for r in self.requests)

    @property
    def errors(self) -> list[tuple[int, Problem]]:
        return [(i, p) for i, rep in enumerate(self.reports) for p in rep.errors]

    @property
    def warnings(self) -> list[tuple[int, Problem]]:
        return [(i, p) for i, rep in enumerate(self.reports) for p in rep.warnings]

    @property
    def total(self) -> dict[str, Decimal]:
        """Estimated cost per currency."""
        out: dict[str, Decimal] = {}
        for c in self.costs:
            out[c.currency] = out.get(c.currency, Decimal(0)) + c.amount
        return out

    def total_text(self) -> str:
        return " + ".join(format_money(v, k) for k, v in self.total.items()) or "nothing"

    def check(self, budget: Decimal | str | float | None = None) -> SweepPlan:
        """Raise ``SweepInvalid`` or ``BudgetExceeded`` unless the sweep can be sent as planned."""
        if self.errors:
            raise SweepInvalid(self, Report(self.kind, tuple(p for _, p in self.errors)))
        if budget is not None:
            limit = parse_amount(budget, "budget")
            totals = self.total
            if len(totals) > 1:
                raise BudgetExceeded(
                    f"the {self.kind} mixes currencies ({self.total_text()}); give one budget per currency"
                )
            spent = next(iter(totals.values()), Decimal(0))
            if spent > limit:
                raise BudgetExceeded(
                    f"{self.kind} {self.id}: estimated {self.total_text()} is over the budget of {limit} "
                    f"({self.runs} run{'s' * (self.runs != 1)}, {self.images} image{'s' * (self.images != 1)}); "
                    f"nothing was sent. Raise budget= or {'promote fewer runs' if self.parents else 'shrink the grid'}"
                )
        return self

    def summary(self) -> str:
        said = f"{self.kind} {self.id}: {self.runs} run{'s' * (self.runs != 1)}, {self.images} image{'s' * (self.images != 1)}"
        if self.errors:  # priced only when valid: "estimated nothing" would hide why
            bad = len({i for i, _ in self.errors})
            first = self.errors[0][1]
            return f"{said}; {bad} invalid, cannot be sent (first: {first.field}: {first.message})"
        return f"{said}, estimated {self.total_text()}"

    def __repr__(self) -> str:
        return f"<SweepPlan {self.summary()}>"


def _dims(size: str | None) -> tuple[int, int] | None:
    try:
        return size_dimensions(size) if size else None
    except ValueError:  # 2K / 4K: the model picks from the prompt
        return None


def size_notes(requests: Sequence[Request]) -> list[str]:
    """A note when a plan compares models at different sizes (4.0's default is 16:9, 4.5's 1:1), with the size both
    models have that is nearest to what they were given; none when every model makes the same size."""
    by_model: dict[str, set[str]] = {}
    for request in requests:
        by_model.setdefault(request.model.short_name, set()).add(str(request.size))
    if len(by_model) < 2:
        return []
    shapes = {m: {_dims(s) for s in sizes} for m, sizes in by_model.items()}
    if len({frozenset(s) for s in shapes.values()}) == 1:
        return []
    common = set.intersection(*({d for d in (_dims(s) for s in get_model(r.model.id).sizes) if d} for r in requests))
    said = "; ".join(f"{m} {', '.join(sorted(s))}" for m, s in by_model.items())
    if not common:
        return [f"the models make different sizes ({said}), and share none: compare the series with that in mind"]
    asked = [d for ds in shapes.values() for d in ds if d]
    ratio = (asked[0][0] / asked[0][1]) if asked else 1.0
    w, h = min(common, key=lambda d: (abs(d[0] / d[1] - ratio), -d[0] * d[1]))
    return [
        f"the models make different sizes ({said}); for a like-for-like comparison give sizes=['{w}x{h}'], "
        "which every model here has"
    ]


def plan_sweep(
    prompts: str | Iterable[str] | None = None,
    seeds: int | Iterable[int] | None = None,
    sizes: str | Iterable[str] | None = None,
    counts: int | Iterable[int] | None = None,
    models: str | Iterable[str] | None = None,
    *,
    references: Iterable[Sequence[Any]] | Sequence[Any] | Any = None,
    requests: Iterable[Request] | None = None,
    prices: PriceInput | None = None,
    **options: Any,
) -> SweepPlan:
    """The grid models x prompts x sizes x counts x seeds x references as requests, each validated and priced.

    ``references=[[url, ...], [url, ...]]``: one run per set of reference images (a flat list of
    URLs is one set), for the edit-sequential models.

    Without ``counts``, each prompt's own stated count is used (else the model's default), so a
    grid over prompts that say different numbers stays valid.
    """
    built: list[Request] = list(requests or [])
    if prompts is not None or not built:
        grid: Iterable[tuple[str, str, str | None, int | None, int | None, Sequence[Any] | None]] = itertools.product(
            _listify(models, ["seedream-4.5"]),
            _listify(prompts, []),
            _listify(sizes, [None]),
            _listify(counts, [None]),
            _listify(seeds, [None]),
            reference_sets(references),
        )
        for model, prompt, size, count, seed, refs in grid:
            if count is None:
                count = stated_count(prompt, COUNT_RANGE)
            built.append(Request(model, prompt, count=count, size=size, seed=seed, references=refs, **options))
    reports = [r.validate() for r in built]
    costs = [r.cost(prices) for r, rep in zip(built, reports, strict=True) if rep.ok]
    return SweepPlan(built, reports, costs)
