"""A run's label: what makes it different from the runs around it, in a few words (pure, no I/O).

One function names runs everywhere (the job board, Recent, the Ledger tab, the matrix and its
lightbox, the report, contact sheets, ``ledger.runs()["label"]``): ``labels(requests)`` gives each
request of a group (a sweep) the values it differs on: its prompt by the words that differ from the
other prompts (``prompt_labels``: "… in watercolour" / "… in ink"), then its model, seed, size,
count, optimize mode and references where those vary. A lone request is named by its model, seed and
prompt. The whole prompt stays beside it, for hover.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from .references import reference_name
from .request import Request
from .spec import get_model

__all__ = [
    "AXES",
    "MAX_DIFF_CHARS",
    "MISSING",
    "axis_labels",
    "derived_label",
    "filled_labels",
    "labels",
    "named_with",
    "prompt_labels",
    "request_value",
    "says",
    "show_value",
    "sweep_label",
    "sweep_label_of",
]

AXES: tuple[str, ...] = ("prompt", "seed", "model", "size", "count", "optimize")
"""What runs are told apart by (and a matrix laid out along), in the order the pickers offer them."""

MAX_DIFF_CHARS = 200
"""A prompt label longer than this (prompts that share almost nothing) is cut; the title keeps it whole."""

LONE_PROMPT_CHARS = 80
"""A run with nothing around it is named by its prompt, cut to this many characters."""

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+(?:['’\-][^\W{_CJK}]+)*|[^\w\s]+")
"""Words (a CJK character is a word: those scripts put no spaces between words), and runs of punctuation."""


_OPTIONAL = ("size", "optimize", "references")
"""Axes a model may not have: a request of such a model has no value there (``request_value`` gives ``MISSING``)."""
MISSING = object()
"""The value of an axis for a model that has no such field (4.5 has no optimize mode): no difference to name."""


def request_value(request: Request, axis: str) -> Any:
    """A request's value on an axis: the prompt, the effective seed, the model id, the size option, the count, the
    optimize mode, the references; ``MISSING`` where its model has no such field."""
    if axis in _OPTIONAL and request.model.role(axis) is None:
        return MISSING
    if axis == "model":
        return request.model.id
    if axis == "count":
        return request.count
    if axis == "references":
        return tuple(request.references)
    if axis not in AXES:
        raise ValueError(f"no axis {axis!r}: choose one of {', '.join(AXES)}")
    return request.resolved().get(axis)


def labels(requests: Sequence[Request]) -> list[str]:
    """Each request by what tells it apart from the others: the values it differs on, joined by `` · ``."""
    if len(requests) < 2:
        return [_lone(r) for r in requests]
    values = {a: [request_value(r, a) for r in requests] for a in (*AXES, "references")}
    axes = [a for a, vs in values.items() if len({repr(v) for v in vs if v is not MISSING}) > 1]
    if not axes:
        return [_lone(r) for r in requests]
    per_axis = [axis_labels(a, values[a]) for a in axes]
    return [" · ".join(shown[i] for shown in per_axis if shown[i]) for i in range(len(requests))]


def filled_labels(runs: Sequence[tuple[str, Request, str | None]]) -> list[str]:
    """The labels of runs read back, given as ``(stored label, request, sweep id)``: a stored label is kept; the runs
    without one (rows written before labels) are labelled among the others of their sweep given with them, and a run
    of no sweep on its own."""
    out = [label for label, _, _ in runs]
    sweeps: dict[str, list[int]] = {}
    for i, (label, request, sweep) in enumerate(runs):
        if label:
            continue
        if sweep:
            sweeps.setdefault(sweep, []).append(i)
        else:
            out[i] = _lone(request)
    for members in sweeps.values():
        for i, named in zip(members, labels([runs[i][1] for i in members]), strict=True):
            out[i] = named
    return out


def says(label: str, value: str) -> bool:
    """Whether a label says ``value`` as whole words (``seed 1`` is not said by ``seed 12``)."""
    return re.search(rf"(?<![\w.-]){re.escape(value)}(?![\w.-])", label) is not None


def named_with(label: str, *values: str) -> str:
    """``label`` followed by each of ``values`` it does not say yet (``says``): a run's model and seed where runs of
    several models or seeds sit side by side."""
    missing = [v for v in values if v and not says(label, v)]
    return " · ".join([label, *missing]) if label else " · ".join(missing)


SWEEP_PROMPT_CHARS = 60
"""A sweep's shared prompt is cut to about this many characters in its label (its title keeps it whole)."""


def sweep_label(prompts: Sequence[str], varies: dict[str, int], most: int = 3) -> str:
    """A sweep in a few words, for the board and the pickers: what its prompts share, what differs between them, and
    how many values each other axis takes (``varies``: ``{"seed": 4, "model": 2}``), e.g. ``Generate 3 images of a
    lighthouse keeper's day… (watercolour / ink / oil paint) · 3 prompts × 4 seeds × 2 models``."""
    distinct = list(dict.fromkeys(" ".join(p.split()) for p in prompts))
    if len(distinct) <= 1:
        text = _cut(distinct[0] if distinct else "", SWEEP_PROMPT_CHARS)
    else:
        shared = _shared_start(distinct)
        named = [label.strip("… ") for label in prompt_labels(distinct[:most])]
        more = f" +{len(distinct) - most}" if len(distinct) > most else ""
        head = _cut(shared, SWEEP_PROMPT_CHARS) if len(shared) >= 12 else ""
        text = (f"{head} " if head else "") + "(" + " / ".join(named) + more + ")"
    axes = {"prompt": len(distinct), **varies}
    grid = " × ".join(f"{n} {a}s" for a, n in axes.items() if n > 1)  # prompts, seeds, models, sizes, counts
    return f"{text} · {grid}" if grid else text


def sweep_label_of(requests: Sequence[Request]) -> str:
    """``sweep_label`` of a sweep's requests."""
    varies = {a: len({repr(request_value(r, a)) for r in requests}) for a in ("seed", "model", "size", "count")}
    return sweep_label([r.prompt or "" for r in requests], varies)


def _shared_start(prompts: Sequence[str]) -> str:
    """The words every prompt starts with, ending in ``…``; '' when they share none."""
    words = [p.split(" ") for p in prompts]
    shared: list[str] = []
    for column in zip(*words, strict=False):
        if len(set(column)) > 1:
            break
        shared.append(column[0])
    return " ".join(shared).rstrip(",;:") + "…" if shared else ""


def _cut(text: str, most: int) -> str:
    """``text`` cut at a word boundary to at most about ``most`` characters, ending in ``…`` when cut."""
    if len(text) <= most:
        return text
    cut = text[: most - 1].rsplit(" ", 1)[0] if " " in text[: most - 1] else text[: most - 1]
    return cut.rstrip(",;: …") + "…"


def derived_label(label: str, before: Request, after: Request) -> str:
    """The label of a run made from another (a rerun, a promote): the original's label and what changed,
    ``… in ink · seed 3 → 4K``."""
    changed = [
        show_value(a, request_value(after, a))
        for a in (*AXES, "references")
        if a != "prompt" and repr(request_value(before, a)) != repr(request_value(after, a))
    ]
    if repr(before.prompt) != repr(after.prompt):
        changed.insert(0, "new prompt")
    return f"{label or _lone(before)} → {', '.join(changed) or 'again'}"


def _lone(request: Request) -> str:
    prompt = " ".join((request.prompt or "").split())
    cut = prompt if len(prompt) <= LONE_PROMPT_CHARS else prompt[: LONE_PROMPT_CHARS - 1] + "…"
    seed = request.resolved().get("seed")
    return " · ".join([request.model.short_name, *([f"seed {seed}"] if seed is not None else []), cut])


def show_value(axis: str, value: Any) -> str:
    """One value of an axis in a few words: ``seed 7``, ``seedream-4.5``, ``4 images``."""
    if axis == "model":
        return get_model(str(value)).short_name
    if axis == "seed":
        return "model's seed" if value is None else f"seed {value}"
    if axis == "count":
        return f"{value} images"
    if axis == "optimize":
        return "no optimize" if value is None else f"optimize {value}"
    if axis == "references":
        names = [reference_name(v) for v in value or ()]
        return ("refs " + names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "")) if names else "no refs"
    return "default size" if value is None and axis == "size" else "default" if value is None else str(value)


def axis_labels(axis: str, values: Sequence[Any]) -> list[str]:
    """Short labels of an axis's values: prompts by their differing words, sizes by their ratios where those tell them
    apart, the rest as ``seed 7``, ``4.5``, ``4 images``; ``""`` where a model has no such field."""
    if axis == "prompt":
        return prompt_labels(["" if v is None else str(v) for v in values])
    shown = ["" if v is MISSING else show_value(axis, v) for v in values]
    if axis == "size":
        ratios = [_RATIO.sub(r"\1", s) for s in shown]
        if len(set(ratios)) == len(set(shown)):
            return ratios
    return shown


_RATIO = re.compile(r"^\S+ \((\d+:\d+)\)$")
"""``2560x1440 (16:9)`` -> ``16:9``: a size by its ratio, where the ratios alone tell the sizes apart."""


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
