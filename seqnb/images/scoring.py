"""Scoring a series: the built-in colour and layout similarity of its frames, a user's own scorer, when to show one.

The built-in score (``consistency``) measures only how alike the frames look: the same palette
and the same composition. It knows nothing of the subject, a character's identity or the prompt,
and most series of one request score 0.97-0.99, so it ranks little. A user's scorer (e.g. CLIP
embeddings in their own environment) plugs in with ``Gallery(scorer=...)``; views show a score
only where it separates the series shown (``separating``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import SettingInvalid
from ..model.spec import COUNT_RANGE

__all__ = [
    "BUILTIN",
    "SPREAD",
    "Scorer",
    "consistency",
    "most_drifting",
    "named_scorer",
    "reference_similarity",
    "score_value",
    "separating",
]

Signature = tuple[list[float], list[float]]

Scorer = Callable[[list[Path]], float | None]
"""A series' frame files (in order) to a score; higher is better."""
BUILTIN = "colour/layout"
"""The name the built-in score is shown and recorded under."""
SPREAD = 0.02
"""Scores of the series shown together that all lie within this of each other separate nothing: not shown."""


def _signature(path: Path) -> Signature:
    with Image.open(path) as img:
        img.draft("RGB", (64, 64))
        small = img.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    hist = small.histogram()  # 3 x 256
    binned = [sum(hist[c * 256 + b * 16 : c * 256 + b * 16 + 16]) for c in range(3) for b in range(16)]
    total = float(sum(binned)) or 1.0
    gray = [float(v) for v in small.convert("L").tobytes()]
    mean = sum(gray) / len(gray)
    centred = [v - mean for v in gray]
    norm = sum(v * v for v in centred) ** 0.5 or 1.0
    return [b / total for b in binned], [v / norm for v in centred]


def consistency(paths: Sequence[Path]) -> float | None:
    """How alike the frames of one series look, colour and layout only, from 0 to 1 (None for fewer than two frames).

    Not a judgement of quality, identity or prompt adherence: the mean over every pair of frames of: half the colour-histogram intersection (3 x 16 bins,
    1 for the same palette) plus half the correlation of their 32x32 grayscale images (1 for the
    same layout, 0 for unrelated or inverted ones). Deterministic: the same files always give the
    same score. Pure noise scores about 0.5 (same flat palette, no shared structure).
    """
    paths = paths[: max(COUNT_RANGE)]  # at most 15 frames: a longer list (a hostile row) is not compared pairwise
    if len(paths) < 2:
        return None
    sigs = [_signature(p) for p in paths]
    scores = [_alike(a, b) for a, b in combinations(sigs, 2)]
    return round(sum(scores) / len(scores), 4)


def _alike(one: Signature, other: Signature) -> float:
    """The score of one pair: half colour-histogram intersection, half grayscale correlation (at least 0)."""
    (h1, g1), (h2, g2) = one, other
    colour = sum(min(a, b) for a, b in zip(h1, h2, strict=True))  # both histograms sum to 1
    structure = max(0.0, sum(a * b for a, b in zip(g1, g2, strict=True)))  # unrelated or inverted: 0
    return 0.5 * colour + 0.5 * structure


def reference_similarity(frames: Sequence[Path], references: Sequence[Path]) -> list[float]:
    """Each frame's likeness to the reference images, from 0 to 1: its mean pair score (as ``consistency``'s) with each.

    Empty without references. Deterministic, like ``consistency``.
    """
    refs = [_signature(p) for p in references]
    return [round(sum(_alike(sig, r) for r in refs) / len(refs), 4) for sig in map(_signature, frames)] if refs else []


def most_drifting(scores: Sequence[float | None]) -> int | None:
    """The index of the frame least like the references (the first of equals), or None with fewer than two scores."""
    known = [(s, i) for i, s in enumerate(scores) if s is not None]
    return min(known)[1] if len(known) >= 2 else None


def named_scorer(scorer: Scorer | tuple[str, Scorer] | None) -> tuple[str, Scorer]:
    """A scorer and its name: ``None`` for the built-in, a named function, or ``(name, fn)``; else ``SettingInvalid``."""
    if scorer is None:
        return BUILTIN, consistency
    name: Any
    if isinstance(scorer, tuple) and len(scorer) == 2:
        name, fn = scorer
    else:
        name, fn = getattr(scorer, "__name__", None), scorer
    if not callable(fn):
        raise SettingInvalid(f"scorer={scorer!r}: give a function from frame paths to a number, or (name, function)")
    if not isinstance(name, str) or not name.strip() or name == "<lambda>" or len(name) > 40:
        raise SettingInvalid(f"scorer: name it (1-40 characters), e.g. Gallery(scorer=('clip', fn)); got {name!r}")
    return name.strip(), fn


def score_value(value: Any) -> float | None:
    """A scorer's answer as a finite float, or None (no score) for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def separating(scores: Sequence[float | None], spread: float = SPREAD) -> bool:
    """Whether the scores of the series shown together are worth showing: two or more, not all within ``spread``."""
    known = [s for s in scores if s is not None]
    return len(known) >= 2 and max(known) - min(known) >= spread
