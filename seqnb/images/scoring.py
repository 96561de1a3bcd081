"""Consistency scoring: how alike the frames of one series are, a deterministic score from 0 to 1 (pure functions)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

from PIL import Image

__all__ = ["consistency"]


def _signature(path: Path) -> tuple[list[float], list[float]]:
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
    scores = []
    for (h1, g1), (h2, g2) in combinations(sigs, 2):
        colour = sum(min(a, b) for a, b in zip(h1, h2, strict=True))  # both histograms sum to 1
        structure = max(0.0, sum(a * b for a, b in zip(g1, g2, strict=True)))  # unrelated or inverted: 0
        scores.append(0.5 * colour + 0.5 * structure)
    return round(sum(scores) / len(scores), 4)
