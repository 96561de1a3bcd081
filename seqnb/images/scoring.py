"""Consistency scoring: how alike the frames of one series are, a deterministic score from 0 to 1 (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

from PIL import Image

__all__ = ["consistency", "most_drifting", "reference_similarity"]

Signature = tuple[list[float], list[float]]


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
    """How alike the frames of one series are, from 0 to 1 (None for fewer than two frames).

    The mean over every pair of frames of: half the colour-histogram intersection (3 x 16 bins,
    1 for the same palette) plus half the correlation of their 32x32 grayscale images (1 for the
    same layout, 0 for unrelated or inverted ones). Deterministic: the same files always give the
    same score. Pure noise scores about 0.5 (same flat palette, no shared structure).
    """
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
    if not references:
        return []
    refs = [_signature(p) for p in references]
    out = []
    for path in frames:
        sig = _signature(path)
        out.append(round(sum(_alike(sig, r) for r in refs) / len(refs), 4))
    return out


def most_drifting(scores: Sequence[float | None]) -> int | None:
    """The index of the frame least like the references (the first of equals), or None with fewer than two scores."""
    known = [(s, i) for i, s in enumerate(scores) if s is not None]
    return min(known)[1] if len(known) >= 2 else None
