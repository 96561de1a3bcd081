"""The judging layer without any I/O: the Bradley-Terry fit and its intervals, the pairing's rules, axis effects."""

from __future__ import annotations

import numpy as np
import pytest

from seqnb.judging.bradley_terry import fit, star_evidence
from seqnb.judging.effects import axis_effects
from seqnb.judging.pairing import Pairing, one_axis_apart


def judge(true: np.ndarray, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """A judge of known taste: series ``i`` beats ``j`` with the Bradley-Terry chance of their true strengths."""
    return lambda i, j: float(rng.random() < 1.0 / (1.0 + np.exp(true[j] - true[i])))


def test_the_fit_recovers_known_strengths_and_its_intervals_cover_them() -> None:
    rng = np.random.default_rng(7)
    true = np.array([-1.5, -0.5, 0.0, 0.5, 1.5])
    pairs = rng.integers(0, 5, size=(4000, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    wins = judge(true, rng)
    score = [wins(i, j) for i, j in pairs]
    found = fit(5, pairs[:, 0], pairs[:, 1], score)
    assert np.abs(found.mean - (true - true.mean())).max() < 0.15
    low, high = found.interval()
    assert ((low < true) & (true < high)).all()
    assert abs(found.mean.sum()) < 1e-9  # centred: only differences mean something
    few = fit(5, pairs[:200, 0], pairs[:200, 1], score[:200])
    assert (few.sd > found.sd).all()  # fewer duels, wider intervals
    assert found.win_probability(4, 0) > 0.9


def test_a_tie_is_half_a_win_and_an_unbeaten_series_stays_finite() -> None:
    tied = fit(2, [0, 1], [1, 0], [0.5, 0.5])
    assert tied.mean[0] == pytest.approx(tied.mean[1])
    as_halves = fit(3, [0, 0, 1], [1, 1, 2], [1.0, 0.0, 1.0])
    as_tie = fit(3, [0, 1], [1, 2], [0.5, 1.0], [2.0, 1.0])
    assert np.allclose(as_halves.mean, as_tie.mean) and np.allclose(as_halves.cov, as_tie.cov)
    unbeaten = fit(3, [0] * 50, [1] * 50, [1.0] * 50)
    assert np.isfinite(unbeaten.mean).all() and unbeaten.mean[0] < 6
    assert unbeaten.sd[2] > unbeaten.sd[0]  # never compared: the widest interval


def test_bad_choices_are_refused_naming_what_a_choice_is() -> None:
    with pytest.raises(ValueError, match="two different series"):
        fit(3, [0], [0], [1.0])
    with pytest.raises(ValueError, match="two different series"):
        fit(3, [0], [3], [1.0])
    with pytest.raises(ValueError, match="score is 1"):
        fit(3, [0], [1], [2.0])


def test_stars_are_weak_evidence_about_one_duel_per_series() -> None:
    left, right, score, weight = star_evidence([5, None, 3, 1, 3])
    assert sorted(zip(left, right, score, strict=True)) == [
        (0, 2, 1.0),
        (0, 3, 1.0),
        (0, 4, 1.0),
        (2, 3, 1.0),
        (3, 4, 0.0),
    ]
    assert set(weight) == {1 / 3}
    found = fit(5, left, right, score, weight)
    assert found.mean[0] > found.mean[2] > found.mean[3] and abs(found.mean[1]) < 0.3
    duel_says_otherwise = fit(5, left + [3] * 4, right + [0] * 4, score + [1.0] * 4, weight + [1.0] * 4)
    assert duel_says_otherwise.mean[3] > duel_says_otherwise.mean[0]  # four duels outweigh the stars


def test_every_series_meets_another_early_and_no_pair_comes_twice_while_others_are_unasked() -> None:
    rng = np.random.default_rng(3)
    true = np.linspace(-3, 3, 24)
    wins = judge(true, rng)
    pairing = Pairing(24, seed=3)
    seen = []
    for _ in range(276):  # every pair once
        i, j = pairing.next_pair()  # type: ignore[misc]
        seen.append(frozenset((i, j)))
        pairing.add(i, j, wins(i, j))
        if len(seen) == 12:
            assert (pairing.met == 1).all()  # the first round: each series met one other
    assert len(set(seen)) == 276
    assert pairing.next_pair() is not None  # then repeats, rather than nothing


def test_the_pair_just_judged_and_a_skipped_pair_wait_their_turn() -> None:
    pairing = Pairing(4, seed=1)
    i, j = pairing.next_pair()  # type: ignore[misc]
    pairing.add(i, j, 1.0)
    assert not set(pairing.next_pair(avoid=(i, j))) & {i, j}  # type: ignore[arg-type]
    k, m = pairing.next_pair()  # type: ignore[misc]
    pairing.skip(k, m)
    asked = [pairing.next_pair() for _ in range(20)]
    assert frozenset((k, m)) not in {frozenset(p) for p in asked if p}  # four other pairs are still unasked
    assert pairing.next_pair(allowed=[True, False, False, False]) is None
    pairing.remove(i, j, 1.0)
    assert pairing.met.sum() == 0 and not pairing.asked[i, j]


def test_pairs_one_axis_apart_hold_the_seed_equal() -> None:
    values = [("ink", 1), ("ink", 2), ("wash", 1), ("wash", 2)]
    apart = one_axis_apart(values, held=(1,))
    assert apart[0, 2] and apart[1, 3]  # another prompt, the same seed
    assert not apart[0, 1] and not apart[0, 3]  # another seed only, or both


def test_the_pairing_ranks_24_series_better_than_random_pairs() -> None:
    """A small version of benchmarks/duel.py: 60 choices, 5 simulated judges; the pairing's mean tau beats random's."""

    def tau(a: np.ndarray, b: np.ndarray) -> float:
        i, j = np.triu_indices(len(a), 1)
        return float((np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])).mean())

    ours, theirs = [], []
    for seed in range(5):
        true = np.random.default_rng(seed).permutation(np.linspace(-3, 3, 24))
        rng = np.random.default_rng(100 + seed)
        wins = judge(true, rng)
        pairing = Pairing(24, seed=seed)
        for _ in range(60):
            i, j = pairing.next_pair()  # type: ignore[misc]
            pairing.add(i, j, wins(i, j))
        ours.append(tau(pairing.strengths.mean, true))
        pairs = [rng.choice(24, 2, replace=False) for _ in range(60)]
        plain = fit(24, [p[0] for p in pairs], [p[1] for p in pairs], [wins(p[0], p[1]) for p in pairs])
        theirs.append(tau(plain.mean, true))
    assert np.mean(ours) > np.mean(theirs)


def test_effects_recover_the_prompt_a_judge_prefers_across_seeds() -> None:
    rng = np.random.default_rng(11)
    prompts, seeds = [-1.0, 0.0, 1.0], rng.normal(0, 0.7, 6)
    axes = [(p, s) for p in range(3) for s in range(6)]
    true = np.array([prompts[p] + seeds[s] for p, s in axes])
    wins = judge(true, rng)
    pairing = Pairing(18, axes=axes, held=(1,), seed=11)
    for _ in range(60):
        i, j = pairing.next_pair()  # type: ignore[misc]
        pairing.add(i, j, wins(i, j))
    found = axis_effects([p for p, _ in axes], pairing.left, pairing.right, pairing.score)
    assert [e.value for e in found] == [2, 1, 0]
    assert found[0].low > found[-1].high  # the best and the worst apart, beyond their intervals
    assert sum(e.comparisons for e in found) == 2 * sum(
        1 for i, j in zip(pairing.left, pairing.right, strict=True) if axes[i][0] != axes[j][0]
    )
