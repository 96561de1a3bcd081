"""Strength per axis value: is "ink" better than "watercolour" across seeds and models, and by how much.

``axis_effects`` turns the duels between series into duels between their values on one axis (a
series of prompt A against one of prompt B is a choice between A and B) and fits those with
``bradley_terry.fit``. Duels between series of the same value say nothing about the axis and are
left out. With the pairing's one-axis pairs (``pairing.one_axis_apart``) most choices compare
values with everything else equal, so the effects are like-for-like.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from .bradley_terry import fit

__all__ = ["Effect", "axis_effects"]


@dataclass(frozen=True)
class Effect:
    """One value of an axis: its strength (logits, centred over the axis's values), its 95% interval, its duels."""

    value: Hashable
    strength: float
    low: float
    high: float
    comparisons: int


def axis_effects(
    values: Sequence[Hashable], left: Sequence[int], right: Sequence[int], score: Sequence[float]
) -> list[Effect]:
    """Each distinct value of ``values`` (series ``k`` has ``values[k]``) fitted from the duels, strongest first."""
    groups = list(dict.fromkeys(values))
    code = {value: k for k, value in enumerate(groups)}
    duels = [
        (code[values[i]], code[values[j]], s)
        for i, j, s in zip(left, right, score, strict=True)
        if code[values[i]] != code[values[j]]
    ]
    strengths = fit(len(groups), [d[0] for d in duels], [d[1] for d in duels], [d[2] for d in duels])
    low, high = strengths.interval()
    counts = [0] * len(groups)
    for a, b, _ in duels:
        counts[a] += 1
        counts[b] += 1
    found = [
        Effect(groups[k], float(strengths.mean[k]), float(low[k]), float(high[k]), counts[k])
        for k in range(len(groups))
    ]
    return sorted(found, key=lambda e: (-e.strength, -e.comparisons))
