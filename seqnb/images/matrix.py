"""A matrix of series, as pure layout: the axes runs vary over, rows x columns (x facets) of cells, pages, labels.

No widgets and no I/O: ``seqnb.ui.matrix_view`` draws it in Jupyter and a static report can draw
it as HTML. ``build_matrix(runs, rows="prompt", cols="seed", facet="model")`` places each run at
the coordinate of its values; several runs at one coordinate share the cell (their differences
are named by ``cell_labels``), a combination nobody ran is an empty cell. Labels name only what
differs; prompts are labelled by the words that differ from the other prompts (``seqnb.model.labels``),
the whole prompt kept as the header's ``title`` for hover. A run made from another run of the matrix
(a promote or a rerun: ``run.parent_id``) sits in its original's cell, right under it, whatever its
own values; the axes and headers are drawn from the originals alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..model.labels import AXES, MISSING, axis_labels, request_value, show_value
from ..runs.run import RunCore

__all__ = [
    "Header",
    "Matrix",
    "Page",
    "axis_value",
    "build_matrix",
    "cell_labels",
    "changes_label",
    "choose_axes",
    "family_order",
    "lineage",
    "made_from",
    "varying_axes",
]


T = TypeVar("T")


def _core(run: Any) -> RunCore:
    core = getattr(run, "aio", run)
    if not isinstance(core, RunCore):
        raise TypeError(f"a matrix is made of runs (Run, AsyncRun or RunCore), not {type(run).__name__}")
    return core


def _check_axes(*axes: str | None) -> None:
    for axis in axes:
        if axis is not None and axis not in AXES:
            raise ValueError(f"no matrix axis {axis!r}: choose one of {', '.join(AXES)}")


def axis_value(run: RunCore, axis: str) -> Any:
    """The run's value on an axis: the prompt, the effective seed, the model id, the size option, the count, the optimize mode."""
    _check_axes(axis)
    value = request_value(run.request, axis)
    return None if value is MISSING else value  # a model without the field sits with the unset ones


def varying_axes(runs: Iterable[Any]) -> list[str]:
    """The axes on which the runs take more than one value, in ``AXES`` order."""
    cores = [_core(r) for r in runs]
    return [a for a in AXES if len({repr(axis_value(r, a)) for r in cores}) > 1]


def lineage(runs: Iterable[Any]) -> dict[str, str]:
    """Child id -> parent id, for each run made from another of ``runs`` (a promote, a rerun): it is shown under it.

    A parent chain that loops (only a forged ledger row can make one) is cut: such runs stand alone.
    """
    cores = [_core(r) for r in runs]
    ids = {r.id for r in cores}
    parent = {r.id: r.parent_id for r in cores if r.parent_id is not None and r.parent_id in ids}
    for child in list(parent):
        seen, up = {child}, parent.get(child)
        while up is not None:
            if up in seen:
                parent.pop(child, None)
                break
            seen.add(up)
            up = parent.get(up)
    return parent


def changes_label(before: RunCore, after: RunCore) -> str:
    """What a run made from another changed: ``4K``, ``optimize standard, seed 9``, ``same settings``."""
    changed = [
        show_value(a, axis_value(after, a))
        for a in AXES
        if a != "prompt" and repr(axis_value(before, a)) != repr(axis_value(after, a))
    ]
    if before.request.prompt != after.request.prompt:
        changed.insert(0, "new prompt")
    return ", ".join(changed) or "same settings"


def made_from(run: RunCore, parent: RunCore | None) -> str:
    """How a run came from its parent: ``promoted`` (a promote is its own sweep) or ``rerun`` (the parent's sweep)."""
    if parent is None:
        return ""
    return "rerun" if run.sweep_id is not None and run.sweep_id == parent.sweep_id else "promoted"


def choose_axes(
    runs: Iterable[Any], rows: str | None = "prompt", cols: str | None = "seed", facet: str | None = "model"
) -> tuple[str | None, str | None, str | None]:
    """The axes asked for, each that does not vary giving its place to the next varying axis not placed (else None).

    Only the originals count: a promoted run sits under its original whatever it changed.
    """
    cores = [_core(r) for r in runs]
    parents = lineage(cores)
    varying = varying_axes([r for r in cores if r.id not in parents])
    asked = [rows, cols, facet]
    _check_axes(*asked)
    placed: list[str | None] = []
    spare = [a for a in varying if a not in asked]
    for axis in asked:
        if axis in varying and axis not in placed:
            placed.append(axis)
        elif spare:
            placed.append(spare.pop(0))
        else:
            placed.append(None)
    return placed[0], placed[1], placed[2]


@dataclass(frozen=True)
class Header:
    """One value of an axis: the value itself, its short label, and the full text for hover."""

    value: Any
    label: str
    title: str


def _headers(
    axis: str | None, cores: Sequence[RunCore], strength: Mapping[str, float] | None = None
) -> tuple[Header, ...]:
    if axis is None:
        return (Header(None, "", ""),)
    values = list(dict.fromkeys(axis_value(r, axis) for r in cores))
    if axis in ("seed", "count"):
        values.sort(key=lambda v: (v is None, v if isinstance(v, int) else 0))
    if strength:  # strongest first: each value by the mean strength of its runs (a run not ranked counts as 0)
        scores: dict[str, list[float]] = {}
        for run in cores:
            scores.setdefault(repr(axis_value(run, axis)), []).append(float(strength.get(run.id, 0.0)))
        values.sort(key=lambda v: -sum(scores[repr(v)]) / len(scores[repr(v)]))
    labels = axis_labels(axis, values)
    return tuple(
        Header(v, lab, show_value(axis, v) if axis != "prompt" else str(v))
        for v, lab in zip(values, labels, strict=True)
    )


def cell_labels(
    runs: Sequence[Any], placed: Iterable[str | None] = (), parents: dict[str, str] | None = None
) -> list[str]:
    """Labels telling apart the runs that share a cell: their values on the varying axes not placed (else their ids).

    ``parents`` (``Matrix.parents``): a run made from another of the cell is labelled by what it changed
    (``changes_label``), the originals among themselves.
    """
    cores = [_core(r) for r in runs]
    if parents:
        by_id = {r.id: r for r in cores}
        originals = [r for r in cores if r.id not in parents]
        own = dict(zip((r.id for r in originals), cell_labels(originals, placed), strict=True))
        return [own[r.id] if r.id not in parents else changes_label(by_id.get(parents[r.id], r), r) for r in cores]
    if len(cores) < 2:
        return ["" for _ in cores]
    used = set(placed)
    axes = [a for a in varying_axes(cores) if a not in used]
    if not axes:
        return [f"run {r.id}" for r in cores]
    per_axis = [axis_labels(a, [axis_value(r, a) for r in cores]) for a in axes]
    return [" · ".join(labels[i] for labels in per_axis) for i in range(len(cores))]


# --- the matrix -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A window of one facet: ``rows`` x ``cols`` (indexes into the matrix's headers) and their cells."""

    facet: int
    row_page: int
    col_page: int
    row_pages: int
    col_pages: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    cells: tuple[tuple[tuple[RunCore, ...], ...], ...]
    """``cells[i][j]``: the runs at (``rows[i]``, ``cols[j]``), empty where nothing was run."""

    def runs(self) -> list[RunCore]:
        """Every run on the page, row by row: the only ones whose thumbnails a view needs."""
        return [run for row in self.cells for cell in row for run in cell]


@dataclass(frozen=True)
class Matrix:
    """Runs placed by their values on up to three axes; see ``build_matrix``."""

    rows_axis: str | None
    cols_axis: str | None
    facet_axis: str | None
    rows: tuple[Header, ...]
    cols: tuple[Header, ...]
    facets: tuple[Header, ...]
    varying: tuple[str, ...]
    runs: tuple[RunCore, ...]
    cells: dict[tuple[int, int, int], tuple[RunCore, ...]] = field(repr=False)
    """(facet, row, column) -> the runs there, in the order given (each followed by the runs made from it);
    absent where nothing was run."""
    strength: Mapping[str, float] | None = field(default=None, repr=False)
    """Run id -> its strength (a ranking from duels): rows, columns and facets strongest first."""
    parents: dict[str, str] = field(default_factory=dict, repr=False)
    """Child id -> parent id, for the runs placed under their original (``lineage``)."""

    def cell(self, row: int, col: int, facet: int = 0) -> tuple[RunCore, ...]:
        return self.cells.get((facet, row, col), ())

    def swapped(self) -> Matrix:
        """The same runs with rows and columns exchanged."""
        return build_matrix(
            self.runs, rows=self.cols_axis, cols=self.rows_axis, facet=self.facet_axis, strength=self.strength
        )

    def page(self, row_page: int = 0, col_page: int = 0, *, rows: int = 6, cols: int = 6, facet: int = 0) -> Page:
        """A window of ``rows`` x ``cols`` cells of one facet; page numbers are clamped into range."""
        if rows < 1 or cols < 1:
            raise ValueError(f"a page has at least one row and one column, not rows={rows}, cols={cols}")
        facet = min(max(0, facet), len(self.facets) - 1)
        row_pages, col_pages = -(-len(self.rows) // rows), -(-len(self.cols) // cols)
        row_page, col_page = min(max(0, row_page), row_pages - 1), min(max(0, col_page), col_pages - 1)
        row_ids = tuple(range(row_page * rows, min(len(self.rows), (row_page + 1) * rows)))
        col_ids = tuple(range(col_page * cols, min(len(self.cols), (col_page + 1) * cols)))
        cells = tuple(tuple(self.cell(r, c, facet) for c in col_ids) for r in row_ids)
        return Page(facet, row_page, col_page, row_pages, col_pages, row_ids, col_ids, cells)

    def locate(self, run_id: str) -> tuple[int, int, int] | None:
        """(facet, row, column) of a run, or None when it is not in the matrix."""
        for key, runs in self.cells.items():
            if any(r.id == run_id for r in runs):
                return key
        return None

    def along_rows(self, run_id: str, step: int) -> RunCore | None:
        """The run ``step`` places down the run's column (through the rows, the runs of a shared cell in turn)."""
        where = self.locate(run_id)
        if where is None:
            return None
        facet, _, col = where
        return _step([r for row in range(len(self.rows)) for r in self.cell(row, col, facet)], run_id, step)

    def reading_order(self, facet: int) -> list[RunCore]:
        """The runs of a facet as one reads them: across each row, row after row (a cell's runs in turn)."""
        return [r for row in range(len(self.rows)) for col in range(len(self.cols)) for r in self.cell(row, col, facet)]

    def along_cols(self, run_id: str, step: int) -> RunCore | None:
        """The run ``step`` places on in reading order (across the row, then on to the next row), in its facet."""
        where = self.locate(run_id)
        return None if where is None else _step(self.reading_order(where[0]), run_id, step)

    def across_facets(self, run_id: str, step: int) -> RunCore | None:
        """The run at the same row and column ``step`` facets on (round the facets): the same place in the next
        model's table; the facet's first run when that place is empty; None with one facet."""
        where = self.locate(run_id)
        if where is None or len(self.facets) < 2:
            return None
        facet, row, col = where
        target = (facet + step) % len(self.facets)
        here = self.cell(row, col, target)
        if here:
            return here[0]
        order = self.reading_order(target)
        return order[0] if order else None

    def find(self, run_id: str) -> RunCore | None:
        return next((r for r in self.runs if r.id == run_id), None)

    def unplaced(self) -> list[str]:
        """The axes on which original runs sharing a cell differ (none when every cell holds one original series)."""
        within = set()
        for runs in self.cells.values():
            originals = [r for r in runs if r.id not in self.parents]
            if len(originals) > 1:
                within.update(varying_axes(originals))
        return [a for a in self.varying if a in within]


def _step(order: list[RunCore], run_id: str, step: int) -> RunCore | None:
    """The run ``step`` places from ``run_id`` in ``order``, or None past either end."""
    index = next(i for i, r in enumerate(order) if r.id == run_id) + step
    return order[index] if 0 <= index < len(order) else None


def build_matrix(
    runs: Iterable[Any],
    rows: str | None = "prompt",
    cols: str | None = "seed",
    facet: str | None = None,
    strength: Mapping[str, float] | None = None,
) -> Matrix:
    """Place runs (``Run``, ``AsyncRun`` or ``RunCore``) by their values on the axes given (None: one row/column/facet).

    The axes are used as asked; see ``choose_axes`` for the ones that vary. Rows, columns and facets
    are the values in order of first appearance (seeds and counts sorted), or, given each run's
    ``strength`` (``Ledger.ranking``), strongest first.
    """
    axes = [rows, cols, facet]
    _check_axes(*axes)
    named = [a for a in axes if a is not None]
    if len(set(named)) != len(named):
        raise ValueError(f"rows, cols and facet must be different axes, got {rows!r}, {cols!r}, {facet!r}")
    cores = tuple(dict.fromkeys(_core(r) for r in runs))
    parents = lineage(cores)
    originals = [r for r in cores if r.id not in parents]
    row_h, col_h, facet_h = (_headers(axis, originals, strength) for axis in (rows, cols, facet))

    def index(axis: str | None, headers: tuple[Header, ...]) -> dict[str, int]:
        return {repr(h.value): i for i, h in enumerate(headers)} if axis else {}

    where = [index(rows, row_h), index(cols, col_h), index(facet, facet_h)]
    cells: dict[tuple[int, int, int], list[RunCore]] = {}
    placed: dict[str, tuple[int, int, int]] = {}
    for run in family_order(
        cores, parents, lambda r: r.id
    ):  # a run made from another: in its original's cell, right under it
        if run.id in parents:
            key = placed[parents[run.id]]
        else:
            r, c, f = (where[k][repr(axis_value(run, a))] if a else 0 for k, a in enumerate(axes))
            key = (f, r, c)
        placed[run.id] = key
        cells.setdefault(key, []).append(run)
    return Matrix(
        rows, cols, facet, row_h, col_h, facet_h, tuple(varying_axes(originals)), cores,
        {k: tuple(v) for k, v in cells.items()}, strength, parents,
    )  # fmt: skip


def family_order(items: Sequence[T], parents: dict[str, str], key: Callable[[T], str]) -> list[T]:
    """The items in the order given, each followed by those made from it (``parents``: ``lineage``), theirs after
    them (depth first): a promoted run under its original."""
    made: dict[str, list[T]] = {}
    for item in items:
        if key(item) in parents:
            made.setdefault(parents[key(item)], []).append(item)
    out: list[T] = []
    stack = [item for item in reversed(items) if key(item) not in parents]
    while stack:
        item = stack.pop()
        out.append(item)
        stack.extend(reversed(made.get(key(item), ())))
    return out
