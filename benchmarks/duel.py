"""Duels: how fast the ranking gets right with seqnb's pairing against random pairs, and what a choice costs.

    python benchmarks/duel.py [--seeds 20] [--no-widget]

1. The simulation of issue #31: 24 series with hidden strengths spread evenly over -3..+3 logits, a
   judge who chooses by a Bradley-Terry model of them, 20 simulation seeds. The same fit
   (``seqnb.judging.bradley_terry.fit``) ranks the series after each number of choices, the choices
   picked by ``seqnb.judging.pairing.Pairing`` or drawn as random pairs, in the same run; printed: the
   median Kendall tau (tau-b) of each ranking against the truth, and the number of choices after
   which the pairing's median stays at or above 0.8. Goal: >= 0.72 at 120 choices, and above random.
2. The kernel-side time from a choice (the message a key sends) to the next pair's thumbnails set on
   the widget (``DuelView.handle_message``: the ledger row written, the fit redone, the next pair
   chosen, its thumbnails read): 24 series of 4 frames on the emulator, the ledger an SQLite file,
   once the duel has made its thumbnails in the background (``DuelView.warmed``).
3. The fit's time for 400 series and 4,000 duels, and the pairing's choice among their 79,800 pairs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from seqnb.judging.bradley_terry import fit
from seqnb.judging.pairing import Pairing

CHECKPOINTS = (24, 48, 72, 96, 120, 160, 200, 240)
ISSUE_RANDOM = {72: 0.66, 120: 0.73, 240: 0.83}
"""Random pairs and a standard fit, as measured when the issue was filed."""


def kendall_tau(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Kendall's tau-b of two scorings of the same items (ties in the estimate count as neither)."""
    i, j = np.triu_indices(len(truth), 1)
    a, b = np.sign(estimate[i] - estimate[j]), np.sign(truth[i] - truth[j])
    pairs = np.sqrt(np.count_nonzero(a) * np.count_nonzero(b))
    return float((a * b).sum() / pairs) if pairs else 0.0


def simulate(seed: int, budget: int, n: int = 24) -> tuple[dict[int, float], dict[int, float]]:
    """(tau after each choice with the pairing, tau at the checkpoints with random pairs) for one simulated judge."""
    shuffle = np.random.default_rng(seed)
    truth = shuffle.permutation(np.linspace(-3.0, 3.0, n))
    judge = np.random.default_rng(10_000 + seed)

    def wins(i: int, j: int) -> float:
        return float(judge.random() < 1.0 / (1.0 + np.exp(truth[j] - truth[i])))

    pairing = Pairing(n, seed=seed)
    ours = {}
    for step in range(1, budget + 1):
        pair = pairing.next_pair()
        assert pair is not None
        pairing.add(*pair, wins(*pair))
        ours[step] = kendall_tau(pairing.strengths.mean, truth)
    draw = np.random.default_rng(20_000 + seed)
    left: list[int] = []
    right: list[int] = []
    score: list[float] = []
    theirs = {}
    for step in range(1, budget + 1):
        i, j = (int(k) for k in draw.choice(n, 2, replace=False))
        left.append(i)
        right.append(j)
        score.append(wins(i, j))
        if step in CHECKPOINTS:
            theirs[step] = kendall_tau(fit(n, left, right, score).mean, truth)
    return ours, theirs


def simulation(seeds: int) -> None:
    budget = CHECKPOINTS[-1]
    runs = [simulate(seed, budget) for seed in range(seeds)]
    median_ours = {step: statistics.median(r[0][step] for r in runs) for step in range(1, budget + 1)}
    median_random = {step: statistics.median(r[1][step] for r in runs) for step in CHECKPOINTS}
    print(f"24 series over -3..+3 logits, a Bradley-Terry judge, {seeds} seeds: median Kendall tau")
    print("  choices   seqnb pairing   random pairs   (random, issue #31)")
    for step in CHECKPOINTS:
        issue = f"{ISSUE_RANDOM[step]:.2f}" if step in ISSUE_RANDOM else ""
        print(f"  {step:7d}   {median_ours[step]:13.3f}   {median_random[step]:12.3f}   {issue:>10}")
    reach = next((s for s in range(1, budget + 1) if all(median_ours[t] >= 0.8 for t in range(s, budget + 1))), None)
    at = median_ours[120]
    ok = at >= 0.72 and at > median_random[120]
    print(
        f"the pairing's median stays >= 0.8 from {reach} choices on; at 120 choices {at:.3f} against random's "
        f"{median_random[120]:.3f}; goal (>= 0.72 at 120 and above random): {'met' if ok else 'NOT met'}"
    )


def fit_cost() -> None:
    rng = np.random.default_rng(0)
    n, m = 400, 4000
    truth = np.linspace(-3.0, 3.0, n)
    left = rng.integers(0, n, m)
    right = (left + rng.integers(1, n, m)) % n
    score = (rng.random(m) < 1.0 / (1.0 + np.exp(truth[right] - truth[left]))).astype(float)
    # as the ledger's rankings and the duel pairing call it: lists read from the ledger, not arrays
    left_list, right_list, score_list = left.tolist(), right.tolist(), score.tolist()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        fit(n, left_list, right_list, score_list)
        times.append(time.perf_counter() - start)
    pairing = Pairing(n, seed=0)
    for i, j, s in zip(left, right, score, strict=True):
        pairing.add(int(i), int(j), float(s), refit=False)
    pairing.refit()
    choose = []
    for _ in range(5):
        start = time.perf_counter()
        pairing.next_pair()
        choose.append(time.perf_counter() - start)
    print(
        f"400 series, 4,000 duels: the fit (strengths and covariance) {statistics.median(times) * 1e3:.0f} ms "
        f"(median of 5); the next pair among 79,800 {statistics.median(choose) * 1e3:.0f} ms"
    )


def widget_cost() -> None:
    import seqnb
    from seqnb import ImageCache
    from seqnb.testing import emulator
    from seqnb.ui.duel_view import DuelView

    with (
        emulator(queue_wait=0, base_seconds=0.02, seconds_per_image=0.01, workers=16) as emu,
        tempfile.TemporaryDirectory() as tmp,
    ):
        client = seqnb.connect(
            emu.token, emu.base_url, ledger=Path(tmp) / "ledger.sqlite", download=ImageCache(Path(tmp) / "cache")
        )
        prompts = [f"Generate 4 images of a lighthouse keeper's day, in style number {i}" for i in range(6)]
        sweep = client.sweep(prompts=prompts, seeds=range(4), quiet=True)
        client.wait_all(sweep, timeout=300)
        client.settle(timeout=300)
        view = DuelView(sweep)
        view.warmed.wait(60)  # the thumbnails made in the background as it opens: a person takes longer to choose
        times, outcomes = [], ["left", "right", "tie"]
        for k in range(60):
            token = view.shown["token"]
            start = time.perf_counter()
            view.handle_message({"action": "choose", "outcome": outcomes[k % 3], "token": token})
            times.append(time.perf_counter() - start)
            assert view.shown["token"] != token and len(view.shown["left"]["frames"]) == 4
        view.close()
        client.close()
    times.sort()
    print(
        f"a choice to the next pair's thumbnails set (24 series of 4 frames, SQLite ledger, 60 choices): "
        f"median {statistics.median(times) * 1e3:.1f} ms, 90th percentile {times[int(0.9 * len(times))] * 1e3:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="simulated judges (default 20, as in the issue)")
    parser.add_argument("--no-widget", action="store_true", help="skip the widget's timing (no emulator)")
    args = parser.parse_args()
    simulation(args.seeds)
    fit_cost()
    if not args.no_widget:
        widget_cost()


if __name__ == "__main__":
    main()
