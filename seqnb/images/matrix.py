"""A matrix of series, as pure layout: the axes runs vary over, rows x columns (x facets) of cells, pages, labels.

No widgets and no I/O: ``seqnb.ui.matrix_view`` draws it in Jupyter and a static report can draw
it as HTML. ``build_matrix(runs, rows="prompt", cols="seed", facet="model")`` places each run at
the coordinate of its values; several runs at one coordinate share the cell (their differences
are named by ``cell_labels``), a combination nobody ran is an empty cell. Labels name only what
differs; prompts are labelled by the words that differ from the other prompts (``prompt_labels``),
the whole prompt kept as the header's ``title`` for hover.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model.spec import get_model
from ..runs.run import RunCore

__all__ = [
    "AXES",
    "Header",
    "Matrix",
    "Page",
    "axis_labels",
    "axis_value",
    "build_matrix",
    "cell_labels",
    "choose_axes",
    "prompt_labels",
    "varying_axes",
]

AXES: tuple[str, ...] = ("prompt", "seed", "model", "size", "count", "optimize")
"""What a matrix can be laid out along, in the order the pickers offer them."""

MAX_DIFF_CHARS = 200
"""A prompt label longer than this (prompts that share almost nothing) is cut; the title keeps it whole."""

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+(?:['’\-][^\W{_CJK}]+)*|[^\w\s]+")
"""Words (a CJK character is a word: those scripts put no spaces between words), and runs of punctuation."""


def _core(run: Any) -> RunCore:
    core = getattr(run, "aio", run)
    if not isinstance(core, RunCore):
        raise TypeError(f"a matrix is made of runs (Run, AsyncRun or RunCore), not {type(run).__name__}")
    return core


def axis_value(run: RunCore, axis: str) -> Any:
    """The run's value on an axis: the prompt, the effective seed, the model id, the size option, the count, the optimize mode."""
    if axis == "model":
        return run.model
    if axis == "count":
        return run.requested
    if axis not in AXES:
        raise ValueError(f"no matrix axis {axis!r}: choose one of {', '.join(AXES)}")
    return run.request.resolved().get(axis)


def varying_axes(runs: Iterable[Any]) -> list[str]:
    """The axes on which the runs take more than one value, in ``AXES`` order."""
    cores = [_core(r) for r in runs]
    return [a for a in AXES if len({repr(axis_value(r, a)) for r in cores}) > 1]


def choose_axes(
    runs: Iterable[Any], rows: str | None = "prompt", cols: str | None = "seed", facet: str | None = "model"
) -> tuple[str | None, str | None, str | None]:
    """The axes asked for, each that does not vary giving its place to the next varying axis not placed (else None)."""
    varying = varying_axes(runs)
    asked = [rows, cols, facet]
    for axis in asked:
        if axis is not None and axis not in AXES:
            raise ValueError(f"no matrix axis {axis!r}: choose one of {', '.join(AXES)}")
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


# --- labels ---------------------------------------------------------------------------------------


def _tokens(text: str) -> list[re.Match[str]]:
    return list(_TOKEN.finditer(text))


def _shared(words: list[str], other: list[str]) -> set[int]:
    """Indexes of ``words`` that line up with a word of ``other`` (difflib's longest matching blocks)."""
    matcher = difflib.SequenceMatcher(None, words, other, autojunk=False)
    return {block.a + k for block in matcher.get_matching_blocks() for k in range(block.size)}


def prompt_labels(prompts: Sequence[str]) -> list[str]:
    """Each prompt by the words that differ from the other prompts: ``"… ink drawing"`` vs ``"… watercolor"``.

    Words every other prompt has at the same place in the alignment are elided as ``…``; a prompt
    that only lacks words the others have says ``without “…”``; identical prompts keep their text.
    """
    distinct = list(dict.fromkeys(prompts))
    tokens = {p: _tokens(p) for p in distinct}
    words = {p: [m.group() for m in tokens[p]] for p in distinct}
    labels: dict[str, str] = {}
    for prompt in distinct:
        mine = words[prompt]
        shared = set(range(len(mine)))
        for other in distinct:
            if other != prompt:
                shared &= _shared(mine, words[other])
        labels[prompt] = _diff_label(prompt, tokens[prompt], shared) or _missing_label(prompt, distinct, words)
    return [labels[p] for p in prompts]


def _diff_label(text: str, tokens: list[re.Match[str]], shared: set[int]) -> str:
    """The original text of each run of differing words, joined by ``…`` where shared words were left out."""
    runs: list[tuple[int, int]] = []
    for i in range(len(tokens)):
        if i in shared:
            continue
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    worded = [(a, b) for a, b in runs if any(not _punct(tokens[k].group()) for k in range(a, b + 1))]
    if not worded:
        return ""
    parts = []
    for n, (a, b) in enumerate(worded):
        start = a == 0 or (n > 0 and worded[n - 1][1] == a - 1)
        parts.append(("" if start else "…") + text[tokens[a].start() : tokens[b].end()])
    label = " ".join(parts)
    if worded[-1][1] < len(tokens) - 1 and not all(_punct(t.group()) for t in tokens[worded[-1][1] + 1 :]):
        label += "…"
    return label if len(label) <= MAX_DIFF_CHARS else label[: MAX_DIFF_CHARS - 1] + "…"


def _punct(word: str) -> bool:
    """Only punctuation (an emoji is a word: it may be the difference)."""
    return all(unicodedata.category(ch).startswith("P") for ch in word)


def _missing_label(prompt: str, distinct: list[str], words: dict[str, list[str]]) -> str:
    """A prompt all of whose words the others share: named by the words it lacks, else by its text."""
    mine = words[prompt]
    for other in distinct:
        if other == prompt:
            continue
        theirs = words[other]
        extra = [theirs[i] for i in sorted(set(range(len(theirs))) - _shared(theirs, mine)) if not _punct(theirs[i])]
        if extra:
            return "without “" + " ".join(extra)[:MAX_DIFF_CHARS] + "”"
    return prompt if len(prompt) <= MAX_DIFF_CHARS else prompt[: MAX_DIFF_CHARS - 1] + "…"


def _show(axis: str, value: Any) -> str:
    if axis == "model":
        return get_model(str(value)).short_name
    if axis == "seed":
        return "random seed" if value is None else f"seed {value}"
    if axis == "count":
        return f"{value} images"
    if axis == "optimize":
        return "no optimize" if value is None else f"optimize {value}"
    return "default" if value is None else str(value)


def axis_labels(axis: str, values: Sequence[Any]) -> list[str]:
    """Short labels of an axis's values: prompts by their differing words, the rest as ``seed 7``, ``4.5``, ``4 images``."""
    if axis == "prompt":
        return prompt_labels(["" if v is None else str(v) for v in values])
    return [_show(axis, v) for v in values]


@dataclass(frozen=True)
class Header:
    """One value of an axis: the value itself, its short label, and the full text for hover."""

    value: Any
    label: str
    title: str


def _headers(axis: str | None, cores: Sequence[RunCore]) -> tuple[Header, ...]:
    if axis is None:
        return (Header(None, "", ""),)
    values = list(dict.fromkeys(axis_value(r, axis) for r in cores))
    if axis in ("seed", "count"):
        values.sort(key=lambda v: (v is None, v if isinstance(v, int) else 0))
    labels = axis_labels(axis, values)
    return tuple(
        Header(v, lab, _show(axis, v) if axis != "prompt" else str(v)) for v, lab in zip(values, labels, strict=True)
    )


def cell_labels(runs: Sequence[Any], placed: Iterable[str | None] = ()) -> list[str]:
    """Labels telling apart the runs that share a cell: their values on the varying axes not placed (else their ids)."""
    cores = [_core(r) for r in runs]
    if len(cores) < 2:
        return ["" for _ in cores]
    used = set(placed)
    axes = [a for a in varying_axes(cores) if a not in used]
    if not axes:
        return [f"run {r.id[:8]}" for r in cores]
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
    """(facet, row, column) -> the runs there, in the order given; absent where nothing was run."""

    def cell(self, row: int, col: int, facet: int = 0) -> tuple[RunCore, ...]:
        return self.cells.get((facet, row, col), ())

    def swapped(self) -> Matrix:
        """The same runs with rows and columns exchanged."""
        return build_matrix(self.runs, rows=self.cols_axis, cols=self.rows_axis, facet=self.facet_axis)

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
        column = [r for row in range(len(self.rows)) for r in self.cell(row, col, facet)]
        index = next(i for i, r in enumerate(column) if r.id == run_id) + step
        return column[index] if 0 <= index < len(column) else None

    def find(self, run_id: str) -> RunCore | None:
        return next((r for r in self.runs if r.id == run_id), None)

    def unplaced(self) -> list[str]:
        """The axes on which runs sharing a cell differ (none when every cell holds one series)."""
        within = {a for runs in self.cells.values() if len(runs) > 1 for a in varying_axes(runs)}
        return [a for a in self.varying if a in within]


def build_matrix(
    runs: Iterable[Any], rows: str | None = "prompt", cols: str | None = "seed", facet: str | None = None
) -> Matrix:
    """Place runs (``Run``, ``AsyncRun`` or ``RunCore``) by their values on the axes given (None: one row/column/facet).

    The axes are used as asked; see ``choose_axes`` for the ones that vary. Rows, columns and facets
    are the values in order of first appearance (seeds and counts sorted).
    """
    axes = [rows, cols, facet]
    for axis in axes:
        if axis is not None and axis not in AXES:
            raise ValueError(f"no matrix axis {axis!r}: choose one of {', '.join(AXES)}")
    named = [a for a in axes if a is not None]
    if len(set(named)) != len(named):
        raise ValueError(f"rows, cols and facet must be different axes, got {rows!r}, {cols!r}, {facet!r}")
    cores = tuple(dict.fromkeys(_core(r) for r in runs))
    row_h, col_h, facet_h = _headers(rows, cores), _headers(cols, cores), _headers(facet, cores)

    def index(axis: str | None, headers: tuple[Header, ...]) -> dict[str, int]:
        return {repr(h.value): i for i, h in enumerate(headers)} if axis else {}

    where = [index(rows, row_h), index(cols, col_h), index(facet, facet_h)]
    cells: dict[tuple[int, int, int], list[RunCore]] = {}
    for run in cores:
        r, c, f = (where[k][repr(axis_value(run, a))] if a else 0 for k, a in enumerate(axes))
        cells.setdefault((f, r, c), []).append(run)
    return Matrix(
        rows, cols, facet, row_h, col_h, facet_h, tuple(varying_axes(cores)), cores,
        {k: tuple(v) for k, v in cells.items()},
    )  # fmt: skip
