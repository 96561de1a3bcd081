"""Bradley-Terry strengths from pairwise choices, and how sure they are.

``fit`` finds the strengths that make the choices most likely, under a Gaussian prior (``PRIOR_SD``
logits) that keeps a series never compared, or never beaten, finite; the Laplace approximation at
that maximum gives their covariance, so each strength comes with an interval. A choice is a
score for the left series: 1 won, 0 lost, 0.5 a tie (counted as half a win each). A weight below 1
makes weak evidence (``star_evidence``: star ratings as a fraction of a duel).

Written with numpy rather than a package: ``choix.opt_pairwise`` gives the same maximum (to 1e-7)
but takes no ties, weights or intervals and is 40x slower at 400 series and 4,000 duels; its
``ep_pairwise`` gives intervals but takes over a minute there (see docs/performance.md).
Strengths are centred (mean 0): only their differences mean something.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["PRIOR_SD", "Z95", "Strengths", "fit", "star_evidence"]

PRIOR_SD = 2.0
"""The prior's spread, in logits: a series 4 logits stronger than another wins 98% of their duels."""
Z95 = 1.959963984540054
"""Half a 95% interval, in standard deviations."""
_MAX_STEPS = 100


@dataclass(frozen=True)
class Strengths:
    """Centred strengths (logits) and their covariance: the posterior of a fit, approximated as a Gaussian."""

    mean: NDArray[np.float64]
    cov: NDArray[np.float64]

    @property
    def sd(self) -> NDArray[np.float64]:
        import numpy as np

        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def interval(self, z: float = Z95) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(low, high) of each strength: ``z`` standard deviations either side (95% by default)."""
        return self.mean - z * self.sd, self.mean + z * self.sd

    def win_probability(self, i: int, j: int) -> float:
        """The chance that series ``i`` beats ``j``, by their strengths."""
        import math

        return 1.0 / (1.0 + math.exp(float(self.mean[j] - self.mean[i])))


def fit(
    n: int,
    left: Sequence[int],
    right: Sequence[int],
    score: Sequence[float],
    weight: Sequence[float] | None = None,
    *,
    start: NDArray[np.float64] | None = None,
) -> Strengths:
    """The strengths of ``n`` series from choices (``left[k]`` against ``right[k]``, ``score[k]`` for the left one).

    Newton's method on the penalised log-likelihood (strictly concave, so one maximum), halving a
    step that would not improve it; ``start`` (a previous fit's mean) makes a refit after one more
    choice take two or three steps. Raises ``ValueError`` for an index outside ``range(n)``, a series
    against itself or a score outside 0..1.
    """
    import numpy as np

    i = np.asarray(left, dtype=np.int64).reshape(-1)
    j = np.asarray(right, dtype=np.int64).reshape(-1)
    s = np.asarray(score, dtype=np.float64).reshape(-1)
    w = np.ones(len(i)) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
    if not len(i) == len(j) == len(s) == len(w):
        raise ValueError(f"left, right, score and weight differ in length: {len(i)}, {len(j)}, {len(s)}, {len(w)}")
    if n < 1:
        raise ValueError(f"n={n}: give at least one series")
    if len(i) and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n or (i == j).any()):
        raise ValueError(f"a choice is between two different series numbered 0 to {n - 1}")
    if len(i) and (s.min() < 0 or s.max() > 1 or w.min() < 0):
        raise ValueError("a score is 1 (left won), 0 (right won) or 0.5 (a tie), and a weight is not negative")
    a, b = np.minimum(i, j), np.maximum(i, j)  # each pair once, as (a, b) with a < b
    pairs, where = np.unique(a * n + b, return_inverse=True)
    first, second = pairs // n, pairs % n
    wins = np.bincount(where, weights=np.where(i == a, s, 1.0 - s) * w, minlength=len(pairs))
    total = np.bincount(where, weights=w, minlength=len(pairs))
    precision = 1.0 / PRIOR_SD**2

    def objective(theta: NDArray[np.float64]) -> float:
        d = theta[first] - theta[second]
        nll = wins @ np.logaddexp(0.0, -d) + (total - wins) @ np.logaddexp(0.0, d)
        return float(nll + 0.5 * precision * theta @ theta)

    def hessian(theta: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        p = 1.0 / (1.0 + np.exp(theta[second] - theta[first]))
        residual = total * p - wins
        grad = precision * theta + np.bincount(first, residual, n) - np.bincount(second, residual, n)
        h = total * p * (1.0 - p)
        hess = np.diag(precision + np.bincount(first, h, n) + np.bincount(second, h, n))
        hess[first, second] -= h
        hess[second, first] -= h
        return grad, hess

    theta = np.zeros(n) if start is None or len(start) != n else np.array(start, dtype=np.float64)
    value = objective(theta)
    for _ in range(_MAX_STEPS):
        grad, hess = hessian(theta)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while True:
            moved = theta - size * step
            new = objective(moved)
            if new <= value + 1e-12 or size < 1e-6:
                break
            size /= 2
        theta, value = moved, new
        if np.abs(size * step).max() < 1e-9:
            break
    _, hess = hessian(theta)
    centre = np.eye(n) - 1.0 / n  # strengths relative to their mean, and the covariance of those
    cov = centre @ np.linalg.inv(hess) @ centre
    return Strengths(theta - theta.mean(), (cov + cov.T) / 2)


def star_evidence(ratings: Sequence[int | None]) -> tuple[list[int], list[int], list[float], list[float]]:
    """Star ratings as weak duels: each two rated series with different stars, the better one winning a fraction.

    The weight is ``1 / (rated - 1)`` per pair, so all its stars together count for about one duel
    per series, whatever the number of series: stars tip close calls, duels decide.
    """
    rated = [(k, r) for k, r in enumerate(ratings) if r]
    if len(rated) < 2:
        return [], [], [], []
    weight = 1.0 / (len(rated) - 1)
    left, right, score, weights = [], [], [], []
    for x, (k, rk) in enumerate(rated):
        for m, rm in rated[x + 1 :]:
            if rk != rm:
                left.append(k)
                right.append(m)
                score.append(1.0 if rk > rm else 0.0)
                weights.append(weight)
    return left, right, score, weights
