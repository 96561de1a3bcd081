"""Scores that are honest: the built-in one shown only where it separates series, a user's scorer used and recorded.

Runs come from the emulator over loopback into a real image cache and a real SQLite ledger.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import seqnb
from seqnb import Gallery, ImageCache
from seqnb.emulator import EmulatorServer
from seqnb.images.render import differing_labels, row_caption
from seqnb.images.scoring import BUILTIN, named_scorer, separating
from seqnb.ledger.marks import RunMarks


def test_a_score_is_shown_only_where_it_separates_the_series() -> None:
    assert not separating([0.97, 0.98, 0.985])  # the usual spread of one prompt's series: tells nothing
    assert separating([0.97, 0.99]) and separating([0.5, None, 0.9])
    assert not separating([0.9]) and not separating([None, None]) and not separating([])
    assert separating([0.97, 0.98], spread=0.01)


def test_scorers_are_named_or_refused() -> None:
    def brightness(paths: list[Path]) -> float:
        return 0.5

    assert named_scorer(None)[0] == BUILTIN and named_scorer(brightness) == ("brightness", brightness)
    assert named_scorer(("clip", brightness)) == ("clip", brightness)
    with pytest.raises(seqnb.SettingInvalid, match="name it"):
        named_scorer(lambda paths: 0.5)
    with pytest.raises(seqnb.SettingInvalid, match="give a function"):
        named_scorer(("clip", 0.5))  # type: ignore[arg-type]


def mean_brightness(paths: list[Path]) -> float:
    """A user's scorer: the mean brightness of the frames, 0 to 1."""
    values = []
    for path in paths:
        with Image.open(path) as img:
            values.append(sum(img.convert("L").resize((16, 16)).tobytes()) / (256 * 255))
    return sum(values) / len(values)


def test_a_users_scorer_is_used_by_the_views_and_recorded_with_its_name(emu: EmulatorServer, tmp_path: Path) -> None:
    gallery = Gallery(ImageCache(tmp_path / "cache"), scorer=mean_brightness)
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=gallery)
    assert client.gallery is gallery and gallery.ledger is client.ledger
    runs = client.sweep(prompts=["Generate 2 images of a boat", "Generate 2 images of a dark cave"], quiet=True)
    client.wait_all(runs, timeout=30)
    client.settle()
    scores = [gallery.score(r) for r in runs]
    assert scores == [
        pytest.approx(mean_brightness([f.image.path for f in gallery.frames(r) if f.image])) for r in runs
    ]
    ledger = client.ledger
    assert ledger is not None
    recorded = ledger.marks(by="scorer:mean_brightness")
    assert set(recorded["kind"]) == {"score"} and len(recorded) == 2
    assert sorted(float(v) for v in recorded["value"]) == sorted(s for s in scores if s is not None)
    assert ledger.runs()["consistency"].isna().all()  # the built-in did not run: the user's replaced it
    assert ledger.marks_of([r.id for r in runs]) == {r.id: RunMarks() for r in runs}  # a score is no judgement
    runs[0].rate(4)
    runs[0].pick()
    runs[0].rate(5, frame=1)
    box = seqnb.compare_grid(runs, size=64)
    labels = [row.children[0].value for row in box.children[0].children]
    assert "★4" in labels[0] and "picked" in labels[0] and "★" not in labels[1]
    assert ("mean_brightness" in labels[0]) == separating(scores)
    buttons = [c.children[1].description for c in box.children[0].children[0].children[1].children]
    assert buttons[1].endswith("★5") and "★" not in buttons[0]
    client.close()


def test_the_built_in_score_is_named_for_what_it_measures(emu: EmulatorServer, tmp_path: Path) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))
    runs = client.sweep(prompts=["Generate 3 images of a boat"], seeds=[1, 2, 3], quiet=True)
    client.wait_all(runs, timeout=30)
    client.settle()
    gallery = client.gallery
    assert gallery is not None and gallery.score_name == "colour/layout"
    scores = [gallery.score(r) for r in runs]
    labels = [row.children[0].value for row in seqnb.compare_grid(runs, size=64).children[0].children]
    assert all(("colour/layout" in label) == separating(scores) for label in labels)
    assert "consistency" not in "".join(labels)
    client.close()


def test_a_failing_scorer_costs_the_score_not_the_run(emu: EmulatorServer, tmp_path: Path) -> None:
    def broken(paths: list[Path]) -> float:
        raise RuntimeError("no GPU here")

    gallery = Gallery(ImageCache(tmp_path / "cache"), scorer=("clip", broken))
    client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=gallery)
    run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a boat", count=2)).wait(30)
    client.settle()
    assert gallery.score(run) is None and len(gallery.frames(run)) == 2
    assert client.ledger is not None and client.ledger.marks(by="scorer:clip").empty
    client.close()


def test_row_captions_show_marks_then_the_score_under_its_name(emu: EmulatorServer, tmp_path: Path) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=False, download=False)
    run = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a boat", count=2, seed=3)).wait(30)
    (label,) = differing_labels([run.aio])
    caption = row_caption(run.aio, label, 0.93, " · ", score_name="clip", marks=RunMarks(rating=3, verdict="rejected"))
    shown = "seedream-4.5 · seed 3 · Generate 2 images of a boat · 2048x2048 (1:1)"
    assert caption == shown + " · ★3 · rejected · clip 0.93"
    assert row_caption(run.aio, label, None, " · ") == shown
    client.close()


def test_the_consistency_score_is_bounded_whatever_the_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """10,000 frames (a hostile ledger row) are not compared pair by pair: a series has at most 15."""
    from seqnb.images import scoring

    frame = tmp_path / "f.png"
    Image.new("RGB", (32, 32), (200, 40, 40)).save(frame)
    read: list[Path] = []
    signature = scoring._signature
    monkeypatch.setattr(scoring, "_signature", lambda p: read.append(p) or signature(p))
    assert scoring.consistency([frame] * 10_000) is not None
    assert len(read) == 15
