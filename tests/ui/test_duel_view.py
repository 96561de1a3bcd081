"""The duel widget without a browser: blind means nothing names the pair in what it syncs; every key through the
message the browser sends; choices in the ledger at once, undo, skip; effects recovered from a simulated judge."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

import seqnb
from seqnb.errors import SettingInvalid
from seqnb.ledger.facade import Ledger
from seqnb.ui.duel_view import DuelView
from tests.ui.conftest import STYLE, STYLES
from tests.ui.test_ui_scale import live_widgets


def synced(view: DuelView, but: tuple[str, ...] = ()) -> str:
    """What the widget syncs to the browser (every trait tagged sync=True, but those named), as the JSON it would send."""
    return json.dumps({name: getattr(view, name) for name in view.traits(sync=True) if name not in but}, default=str)


def names_of(run: Any) -> list[str]:
    """What would name a series: its prompt (and the words that differ), model, seed, run and request ids, cost."""
    resolved = run.request.resolved()
    return [
        run.request.prompt, run.request.prompt[len(STYLE):], run.id, str(run.aio.request_id), "seedream",
        f"seed {resolved['seed']}", f'"seed": "{resolved["seed"]}"', "USD", str(run.request.cost().amount),
    ]  # fmt: skip


def key(view: DuelView, name: str) -> object:
    """What the browser sends for a key (duel.js: KEYS, with the pair's token for a choice or a skip)."""
    keys = {
        "ArrowLeft": {"action": "choose", "outcome": "left"},
        "ArrowRight": {"action": "choose", "outcome": "right"},
        "ArrowDown": {"action": "choose", "outcome": "tie"},
        "s": {"action": "skip"},
        "u": {"action": "undo"},
        "f": {"action": "full"},
    }
    msg = dict(keys[name])
    if msg["action"] in ("choose", "skip"):
        msg["token"] = view.shown["token"]
    return view.handle_message(msg)


def test_blind_the_synced_state_names_nothing_of_the_pair_until_it_is_judged(sweep: seqnb.Sweep) -> None:
    view = seqnb.duel(sweep)
    for _ in range(3):
        pair = view.pair
        assert pair is not None
        state = synced(view, but=("reveal",))
        for run in pair:
            assert not [n for n in names_of(run) if n in state], f"the browser could read a name of {run.id}"
        # the reveal names the pair judged before, never a series shown now (its prompt may be another's too)
        assert pair[0].id not in synced(view) and pair[1].id not in synced(view)
        assert set(view.shown) == {"token", "left", "right"}
        assert all(
            set(f) == {"src"} and f["src"].startswith("data:image/jpeg;base64,") for f in view.shown["left"]["frames"]
        )
        bundle = json.dumps(view._repr_mimebundle_(), default=str)  # what a display (and a saved notebook) holds
        assert not [n for run in pair for n in names_of(run)[:3] if n in bundle]
        key(view, "f")  # full frames: bytes, and a message that names nothing but the token, side and frame
        assert view.large_sent and {tuple(sorted(m)) for m, _ in view.large_sent} == {
            ("frame", "kind", "side", "token")
        }
        key(view, "f")
        key(view, "ArrowLeft")
        assert view.reveal["left"]["run"] == pair[0].id and view.reveal["right"]["prompt"] == pair[1].request.prompt
        assert pair[0].request.prompt in synced(view)  # judged, then revealed: the check above can see a name
    view.close()
    named = seqnb.duel(sweep, blind=False)
    assert all(n in synced(named) for run in named.pair for n in names_of(run)[:3])  # type: ignore[union-attr]
    named.close()


def test_every_key_records_or_takes_back_a_choice_at_once(sweep: seqnb.Sweep, seqnb_ledger: Ledger) -> None:
    view = seqnb.duel(sweep)
    first = view.pair
    token = view.shown["token"]
    key(view, "ArrowLeft")
    view.handle_message({"action": "choose", "outcome": "left", "token": token})  # the key pressed twice: ignored
    second = view.pair
    key(view, "ArrowRight")
    key(view, "s")
    key(view, "ArrowDown")
    rows = seqnb_ledger.duels()
    assert [(r.left_id, r.right_id, r.outcome, r.blind) for r in rows.itertuples()][:2] == [
        (first[0].id, first[1].id, "left", True),  # type: ignore[index]
        (second[0].id, second[1].id, "right", True),  # type: ignore[index]
    ]
    assert list(rows["outcome"]) == ["left", "right", "tie"] and view.progress["skipped"] == 1
    assert not {first[0].id, first[1].id} & {second[0].id, second[1].id}  # type: ignore[index]  # not the pair just revealed
    tied = rows.iloc[2]
    key(view, "u")  # the row is gone, the pair comes back
    assert list(seqnb_ledger.duels()["id"]) == list(rows["id"][:2])
    assert [r.id for r in view.pair] == [tied["left_id"], tied["right_id"]]  # type: ignore[union-attr]
    assert view.reveal == {} and "taken back" in view.message
    key(view, "ArrowLeft")  # judged again after its reveal: not blind any more, and the row says so
    assert not seqnb_ledger.duels().iloc[-1]["blind"]
    key(view, "u")
    key(view, "u")
    key(view, "u")
    key(view, "u")
    assert seqnb_ledger.duels().empty and "nothing to undo" in view.message
    view.choose("draw")
    assert "'left', 'right' or 'tie'" in view.message
    view.handle_message({"action": "launch"})
    assert "does not know the action" in view.message
    view.close()


def test_a_new_duel_goes_on_from_the_choices_in_the_ledger(sweep: seqnb.Sweep, seqnb_ledger: Ledger) -> None:
    view = seqnb.duel(sweep, seed=1)
    asked = set()
    for _ in range(6):
        asked.add(frozenset(r.id for r in view.pair))  # type: ignore[union-attr]
        view.choose("left")
    view.close()
    again = seqnb.duel(sweep.id, ledger=seqnb_ledger, seed=1)  # rebuilt from the ledger, as after a restart
    assert again.progress["choices"] == 6 and again.pairing.met.sum() == 12
    for _ in range(20):
        assert frozenset(r.id for r in again.pair) not in asked  # type: ignore[union-attr]
        again.skip()
    again.close()


def test_effects_by_prompt_recover_the_prompt_a_simulated_judge_prefers(
    sweep: seqnb.Sweep, seqnb_ledger: Ledger
) -> None:
    taste = {"ink drawing": 1.2, "watercolor": 0.0, "woodcut": -1.2}
    luck = random.Random(5)
    seed_taste = {s: luck.gauss(0, 0.5) for s in (1, 2, 3, 4)}

    def strength(run: Any) -> float:
        return taste[run.request.prompt[len(STYLE) :]] + seed_taste[run.request.seed]

    view = seqnb.duel(sweep, seed=5)
    for _ in range(36):
        left, right = view.pair  # type: ignore[misc]
        p = 1 / (1 + pow(2.718281828, strength(right) - strength(left)))
        view.choose("left" if luck.random() < p else "right")
    found = seqnb_ledger.effects(sweep.id, by="prompt")
    assert list(found["label"]) == ["…ink drawing", "…watercolor", "…woodcut"]
    assert found["low"][0] > found["high"][2]
    ranked = view.ranking()
    assert ranked["label"][0].startswith("…ink drawing") and ranked["label"].iloc[-1].startswith("…woodcut")
    matrix = view.matrix()  # rows by the ranking: each prompt by the mean strength of its series
    means = ranked.assign(prompt=ranked["label"].str.split(" · ").str[0]).groupby("prompt")["strength"].mean()
    assert [r["label"] for r in matrix.snapshot["rows"]] == list(means.sort_values(ascending=False).index)
    matrix.close()
    view.close()


def test_a_duel_needs_a_ledger_and_two_completed_series(sweep: seqnb.Sweep, tmp_path: Any) -> None:
    from seqnb.images.cache import ImageCache

    gallery = seqnb.Gallery(ImageCache(tmp_path / "images"))
    with pytest.raises(SettingInvalid, match="ledger"):
        DuelView([_detached(r) for r in sweep], gallery=gallery)  # runs of no client: no ledger to write to
    with pytest.raises(SettingInvalid, match="two completed series"):
        seqnb.duel(sweep[:1])


def _detached(run: Any) -> Any:
    from seqnb.runs.run import RunCore

    return RunCore(run.request, status="completed")


def test_the_gallery_tab_has_a_duel_mode(sweep: seqnb.Sweep, seqnb_client: seqnb.Client) -> None:
    studio = seqnb.Studio(seqnb_client)
    studio.show_tab("Gallery")
    view = studio.gallery_view
    view.mode.value = "matrix"
    count = live_widgets()
    view.mode.value = "duel"  # as the toggle does
    assert isinstance(view.matrix, DuelView) and {r.id for r in view.matrix.series} == {r.id for r in sweep}
    assert live_widgets() == count  # the matrix closed
    view.matrix.choose("right")
    assert seqnb_client.ledger is not None and len(seqnb_client.ledger.duels()) == 1
    view.mode.value = "recent"
    assert view.matrix_box.layout.display == "none"
    studio.close()


def test_the_matrix_can_put_rows_and_columns_in_the_ranking_order(tmp_path: Any) -> None:
    from seqnb.images.cache import ImageCache
    from seqnb.images.matrix import build_matrix
    from seqnb.model.request import Request
    from seqnb.runs.run import RunCore
    from seqnb.ui.matrix_view import MatrixView

    runs = [RunCore(Request("seedream-4.5", STYLE + s, count=3, seed=n)) for s in STYLES for n in (1, 2)]
    strength = {
        r.id: {"woodcut": 2.0, "ink drawing": 0.5, "watercolor": -1.0}[r.request.prompt[len(STYLE) :]] for r in runs
    }
    strength[runs[1].id] += 1.0  # ink drawing, seed 2
    plain = build_matrix(runs, "prompt", "seed")
    assert [h.label for h in plain.rows] == ["…ink drawing", "…watercolor", "…woodcut"]
    ranked = build_matrix(runs, "prompt", "seed", strength=strength)
    assert [h.label for h in ranked.rows] == ["…woodcut", "…ink drawing", "…watercolor"]
    assert [h.label for h in ranked.cols] == ["seed 2", "seed 1"]
    assert [h.label for h in ranked.swapped().cols] == ["…woodcut", "…ink drawing", "…watercolor"]
    frame = __import__("pandas").DataFrame({"run_id": list(strength), "strength": list(strength.values())})
    view = MatrixView(runs, gallery=seqnb.Gallery(ImageCache(tmp_path / "images")), rank=frame)
    assert [r["label"] for r in view.snapshot["rows"]] == ["…woodcut", "…ink drawing", "…watercolor"]
    view.set_axes("seed", "prompt")
    assert [c["label"] for c in view.snapshot["cols"]] == ["…woodcut", "…ink drawing", "…watercolor"]
    view.close()
