"""The matrix as pure layout: axes from what varies, prompt word diffs, cells, swap, paging and stepping."""

from __future__ import annotations

import pytest

from seqnb.images.matrix import build_matrix, cell_labels, choose_axes, varying_axes
from seqnb.model.labels import prompt_labels
from seqnb.model.request import Request
from seqnb.runs.run import RunCore

BASE = "Generate 4 images of a lighthouse keeper's day, from dawn to night, one moment per image, in "


def run(prompt: str = BASE + "ink drawing", seed: int = 1, model: str = "seedream-4.5", **kw: object) -> RunCore:
    return RunCore(Request(model, prompt, seed=seed, count=kw.pop("count", 4), **kw))  # type: ignore[arg-type]


def test_axes_are_what_varies() -> None:
    runs = [run(BASE + style, seed) for style in ("ink drawing", "watercolor") for seed in (1, 2, 3)]
    assert varying_axes(runs) == ["prompt", "seed"]
    runs.append(run(BASE + "ink drawing", 1, size="2K"))
    assert varying_axes(runs) == ["prompt", "seed", "size"]
    mixed = [run(model="seedream-4.0", seed=1), run(model="seedream-4.5", seed=1)]
    assert "model" in varying_axes(mixed)
    assert varying_axes([run(), run()]) == []


def test_an_axis_that_does_not_vary_gives_its_place() -> None:
    runs = [run(seed=s, size=size) for s in (1, 2) for size in ("2K", "4K")]
    assert choose_axes(runs, "prompt", "seed", "model") == ("size", "seed", None)
    assert choose_axes(runs, "seed", "size", None) == ("seed", "size", None)
    with pytest.raises(ValueError, match="no matrix axis 'colour'"):
        choose_axes(runs, "colour")


def test_prompt_labels_show_the_words_that_differ_after_a_long_shared_prefix() -> None:
    labels = prompt_labels([BASE + "ink drawing", BASE + "watercolor", BASE + "oil paint, at dusk"])
    assert labels == ["…ink drawing", "…watercolor", "…oil paint, at dusk"]
    long = BASE * 4
    assert prompt_labels([long + "ink", long + "pastel"]) == ["…ink", "…pastel"]


def test_prompt_labels_with_different_lengths_and_middles() -> None:
    labels = prompt_labels(["a red fox in the snow at night", "a blue fox in the snow at night", "a red fox"])
    assert labels[0] == "…red …in the snow at night"  # "a red fox" lacks the end
    assert labels[1] == "…blue …in the snow at night"
    assert labels[2] == "…red…"  # differs from the blue one in its colour and is shorter than both
    assert prompt_labels(["a fox", "a fox at dusk"]) == ["without “at dusk”", "…at dusk"]
    assert prompt_labels(["same", "same", "other"]) == ["same", "same", "other"]


def test_prompt_labels_in_other_scripts() -> None:
    assert prompt_labels(["生成三张图片：一只猫在花园里", "生成三张图片：一只狗在花园里"]) == ["…猫…", "…狗…"]
    assert prompt_labels(["Générer 3 images d’un café à Paris", "Générer 3 images d’un thé à Paris 🌧"]) == [
        "…café…",
        "…thé …🌧",
    ]
    assert prompt_labels(["이미지 3장: 바다 위의 등대", "이미지 3장: 숲 속의 등대"]) == ["…바다 위의…", "…숲 속의…"]


def test_cells_headers_and_hover_titles() -> None:
    runs = [run(BASE + style, seed) for style in ("ink drawing", "watercolor") for seed in (3, 1)]
    m = build_matrix(runs, rows="prompt", cols="seed")
    assert [h.label for h in m.rows] == ["…ink drawing", "…watercolor"]
    assert m.rows[1].title == BASE + "watercolor"
    assert [h.label for h in m.cols] == ["seed 1", "seed 3"]  # seeds sorted
    assert m.cell(0, 1) == (runs[0],) and m.cell(1, 0) == (runs[3],)
    assert m.facets[0].label == "" and m.unplaced() == []


def test_a_missing_combination_is_an_empty_cell_and_shared_cells_are_labelled() -> None:
    runs = [run(seed=1), run(seed=2), run(BASE + "watercolor", 1)]
    m = build_matrix(runs, rows="prompt", cols="seed")
    assert m.cell(1, 1) == ()
    stacked = [run(seed=1, size="2K"), run(seed=1, size="4K")]
    m = build_matrix(stacked, rows="prompt", cols="seed")
    assert len(m.cell(0, 0)) == 2 and m.unplaced() == ["size"]
    assert cell_labels(m.cell(0, 0), ["prompt", "seed"]) == ["2K", "4K"]
    with pytest.raises(ValueError, match="different axes"):
        build_matrix(runs, rows="seed", cols="seed")


def test_swap_and_facets() -> None:
    runs = [run(seed=s, model=m) for s in (1, 2, 3) for m in ("seedream-4.0", "seedream-4.5")]
    m = build_matrix(runs, rows="seed", cols="prompt", facet="model")
    assert (len(m.rows), len(m.cols), len(m.facets)) == (3, 1, 2)
    assert [f.label for f in m.facets] == ["seedream-4.0", "seedream-4.5"]
    s = m.swapped()
    assert (s.rows_axis, s.cols_axis, len(s.rows), len(s.cols)) == ("prompt", "seed", 1, 3)
    assert s.cell(0, 2, facet=1) == m.cell(2, 0, facet=1)


def test_paging_a_20_by_20_matrix() -> None:
    prompts = [f"Generate 2 images of lantern number {i}" for i in range(20)]
    runs = [run(p, seed, count=2) for p in prompts for seed in range(20)]
    m = build_matrix(runs, rows="prompt", cols="seed")
    assert (len(m.rows), len(m.cols)) == (20, 20)
    first = m.page(rows=6, cols=8)
    assert (first.row_pages, first.col_pages, first.rows, first.cols[-1]) == (4, 3, tuple(range(6)), 7)
    assert len(first.runs()) == 48
    last = m.page(9, 9, rows=6, cols=8)  # clamped to the last page
    assert (last.row_page, last.col_page, last.rows, last.cols) == (3, 2, (18, 19), (16, 17, 18, 19))
    assert last.cells[1][3] == (runs[19 * 20 + 19],)
    assert sum(len(m.page(r, c, rows=6, cols=8).runs()) for r in range(4) for c in range(3)) == 400
    assert [h.label for h in m.rows[:2]] == ["…0", "…1"]


def test_stepping_along_the_rows() -> None:
    runs = [run(f"Generate 4 images of {thing}", seed) for thing in ("an owl", "a bat", "a moth") for seed in (1, 2)]
    m = build_matrix(runs, rows="prompt", cols="seed")
    assert m.along_rows(runs[1].id, 1) is runs[3]
    assert m.along_rows(runs[3].id, -1) is runs[1]
    assert m.along_rows(runs[5].id, 1) is None
    assert m.locate(runs[4].id) == (0, 2, 0)
    assert m.locate("nope") is None


def test_axes_that_follow_another_are_not_said_to_share_cells() -> None:
    # 4.0 and 4.5 have different default sizes and only 4.0 has an optimize mode: both follow the model
    runs = [run(seed=s, model=m) for s in (1, 2) for m in ("seedream-4.0", "seedream-4.5")]
    m = build_matrix(runs, rows="prompt", cols="seed", facet="model")
    assert m.varying == ("seed", "model", "size", "optimize")
    assert m.unplaced() == []
    assert build_matrix(runs, rows="prompt", cols="seed").unplaced() == ["model", "size", "optimize"]


def test_reading_order_across_the_row_then_the_next_and_the_same_place_in_another_facet() -> None:
    runs = [
        run(f"Generate 4 images of {thing}", seed, model=m)
        for m in ("seedream-4.0", "seedream-4.5")
        for thing in ("an owl", "a bat")
        for seed in (1, 2)
    ]
    m = build_matrix(runs, rows="prompt", cols="seed", facet="model")
    assert m.reading_order(0) == runs[:4] and m.reading_order(1) == runs[4:]
    assert m.along_cols(runs[0].id, 1) is runs[1]  # across the row
    assert m.along_cols(runs[1].id, 1) is runs[2]  # then on to the next row
    assert m.along_cols(runs[3].id, 1) is None and m.along_cols(runs[0].id, -1) is None  # a facet's ends
    assert m.across_facets(runs[2].id, 1) is runs[6] and m.across_facets(runs[6].id, 1) is runs[2]  # round the facets
    assert build_matrix(runs[:4], rows="prompt", cols="seed").across_facets(runs[0].id, 1) is None


def test_a_run_made_from_another_sits_under_it_whatever_it_changed() -> None:
    runs = [run(seed=s) for s in (1, 2)]
    child = run(seed=1, size="4K")
    child.parent_id, child.sweep_id = runs[0].id, "sw-promote"
    grandchild = run(seed=9, size="4K")
    grandchild.parent_id = child.id
    m = build_matrix([child, *runs, grandchild], rows="prompt", cols="seed")
    assert m.parents == {child.id: runs[0].id, grandchild.id: child.id}
    assert [h.label for h in m.cols] == ["seed 1", "seed 2"]  # seed 9 and 4K make no column of their own
    assert m.cell(0, 0) == (runs[0], child, grandchild) and m.unplaced() == [] and m.varying == ("seed",)
    assert cell_labels(m.cell(0, 0), ["prompt", "seed"], m.parents) == ["", "4K", "seed 9"]
    assert choose_axes([child, *runs, grandchild], "prompt", "seed", "size") == (None, "seed", None)
    loop = run(seed=3)
    loop.parent_id = loop.id  # a forged row naming itself: a run of its own
    assert build_matrix([loop], rows="seed", cols=None).cell(0, 0) == (loop,)
