"""A run's label names what tells it apart from the runs around it, wherever it is shown (issue #30)."""

from __future__ import annotations

from pathlib import Path

import seqnb
from seqnb.model.labels import derived_label, labels
from seqnb.testing import FAST, emulator

KEEPER = "Generate 3 images of a lighthouse keeper's day on a stormy northern island, from dawn to dusk, in {}"
STYLES = ("watercolour", "ink", "oil paint")


def test_a_sweep_is_labelled_by_its_differing_words_and_the_values_that_vary() -> None:
    requests = [
        seqnb.Request(model, KEEPER.format(style), count=3, seed=seed)
        for model in ("seedream-4.0", "seedream-4.5")
        for style in STYLES
        for seed in (1, 2)
    ]
    named = labels(requests)
    assert named[0] == "…watercolour · seed 1 · seedream-4.0 · 16:9"  # each model's own default size, said
    assert named[-1] == "…oil paint · seed 2 · seedream-4.5 · 1:1"  # 4.5 has no optimize mode: not a difference
    assert len(set(named)) == len(requests)  # every run told apart
    assert all("lighthouse" not in label for label in named)  # what they share is left out


def test_a_lone_run_is_its_model_and_prompt_and_a_rerun_says_what_changed() -> None:
    lone = seqnb.Request("seedream-4.5", KEEPER.format("ink"), count=3, seed=4)
    (label,) = labels([lone])
    assert label.startswith("seedream-4.5 · seed 4 · Generate 3 images of a lighthouse") and label.endswith("…")
    promoted = lone.replace(resolution="4K")
    assert derived_label("…ink · seed 4", lone, promoted) == "…ink · seed 4 → 4K"
    assert derived_label("", lone, lone.replace(seed=9)).endswith("→ seed 9")


def test_the_ledger_keeps_each_runs_label(tmp_path: Path) -> None:
    with emulator(**FAST) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
        runs = client.sweep(prompts=[KEEPER.format(s) for s in STYLES], seeds=[1, 2], quiet=True)
        client.wait_all(runs, timeout=60)
        assert client.ledger is not None
        frame = client.ledger.runs(sweep=runs.id).set_index("id")
        assert [frame.loc[r.id, "label"] for r in runs] == [r.label for r in runs]
        assert {frame.loc[r.id, "label"] for r in runs} == {f"…{s} · seed {n}" for s in STYLES for n in (1, 2)}
        assert client.ledger.restore(runs[0].id).label == runs[0].label
        client.close()


def test_a_sweep_across_models_says_when_their_sizes_differ_and_offers_one_they_share() -> None:
    from seqnb.model.sweep import plan_sweep

    mixed = plan_sweep(prompts=[KEEPER.format("ink")], seeds=[1], models=["seedream-4.0", "seedream-4.5"])
    (note,) = mixed.notes  # 4.0's default is 16:9, 4.5's 1:1: a model comparison that compares shapes too
    assert "seedream-4.0 2560:1440 (16:9)" in note and "seedream-4.5 2048x2048 (1:1)" in note
    assert "sizes=['2560x1440']" in note  # the size both models have, nearest to what they were given
    like = plan_sweep(
        prompts=[KEEPER.format("ink")], seeds=[1], models=["seedream-4.0", "seedream-4.5"], sizes=["16:9"]
    )
    assert like.notes == [] and {r.size for r in like.requests} == {"2560:1440 (16:9)", "2560x1440 (16:9)"}
    assert plan_sweep(prompts=[KEEPER.format("ink")], seeds=[1, 2]).notes == []  # one model: nothing to say
