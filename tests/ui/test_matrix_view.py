"""The matrix widget and its lightbox without a browser: every key and button through the message the browser
sends, marks written and read back, paging with a flat widget count, Promote priced and linked."""

from __future__ import annotations

import html
import subprocess
import sys
from pathlib import Path
from typing import Any

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.images.cache import ImageCache
from seqnb.ledger.facade import Ledger
from seqnb.model.request import Request
from seqnb.runs.run import RunCore
from seqnb.ui.matrix_view import MatrixView
from tests.ui.conftest import STYLE, STYLES
from tests.ui.test_ui_scale import live_widgets, until


def key(view: MatrixView, name: str, shift: bool = False) -> object:
    """What the browser sends for a key in the lightbox (matrix.js onKey)."""
    if name.isdigit():
        return view.handle_message({"action": "rate", "n": int(name), "series": shift})
    keys = {
        "ArrowLeft": {"action": "step_frame", "step": -1},
        "ArrowRight": {"action": "step_frame", "step": 1},
        "ArrowUp": {"action": "step_run", "step": -1},
        "ArrowDown": {"action": "step_run", "step": 1},
        "p": {"action": "pick"},
        "x": {"action": "reject"},
        "Escape": {"action": "close"},
    }
    return view.handle_message(keys[name])


def test_the_page_shows_prompts_by_their_differing_words_and_each_series_as_a_strip(sweep: seqnb.Sweep) -> None:
    view = seqnb.matrix(sweep, rows="prompt", cols="seed")
    snap = view.snapshot
    assert [r["label"] for r in snap["rows"]] == ["…ink drawing", "…watercolor", "…woodcut"]
    assert snap["rows"][1]["title"] == STYLE + "watercolor"
    assert [c["label"] for c in snap["cols"]] == ["seed 1", "seed 2", "seed 3", "seed 4"]
    assert snap["axes"]["offered"] == ["prompt", "seed"] and snap["axes"]["facet"] is None
    (run,) = snap["cells"][0][0]
    assert run["id"] == sweep[0].id and run["state"] == "completed"
    assert [f["i"] for f in run["frames"]] == [0, 1, 2]
    assert all(f["src"].startswith("data:image/jpeg;base64,") for f in run["frames"])
    view.swap()
    assert [r["label"] for r in view.snapshot["rows"]][:2] == ["seed 1", "seed 2"]
    view.handle_message({"action": "axes", "rows": "seed", "cols": None, "facet": "prompt"})
    assert len(view.snapshot["facets"]) == 3 and len(view.snapshot["cols"]) == 1
    view.close()


def test_every_lightbox_key_and_button(sweep: seqnb.Sweep, seqnb_ledger: Ledger) -> None:
    view = seqnb.matrix(sweep, rows="prompt", cols="seed")
    first = sweep[0]
    box = view.handle_message({"action": "open", "run": first.id, "frame": 0})
    assert box["open"] and box["run"] == first.id and box["frame"] == 0
    assert box["prompt"] == STYLE + "ink drawing" and box["seed"] == "1" and box["cost"].startswith("USD")
    assert box["model"] == "seedream-4.5" and box["run"] == first.id and box["size"]
    assert view.large_sent is not None and view.large_sent[0] == {"kind": "large", "run": first.id, "frame": 0}
    assert view.large_sent[1][:2] == b"\xff\xd8"  # the JPEG sent on demand, not in the snapshot
    key(view, "ArrowLeft")
    assert view.lightbox["frame"] == 0  # stays at the first frame
    key(view, "ArrowRight")
    assert view.lightbox["frame"] == 1 and view.large_sent[0]["frame"] == 1
    key(view, "5")
    assert seqnb_ledger.marks_of([first.id])[first.id].frame_ratings == {1: 5}
    assert view.lightbox["frame_rating"] == 5
    assert view.snapshot["cells"][0][0][0]["frames"][1]["rating"] == 5
    key(view, "0")
    assert seqnb_ledger.marks_of([first.id])[first.id].frame_ratings == {}
    key(view, "4", shift=True)
    assert seqnb_ledger.marks_of([first.id])[first.id].rating == 4 and view.lightbox["rating"] == 4
    key(view, "p")
    assert seqnb_ledger.marks_of([first.id])[first.id].verdict == "picked"
    assert view.snapshot["total"]["picked"] == 1 and view.lightbox["verdict"] == "picked"
    key(view, "p")  # again: un-picked
    assert seqnb_ledger.marks_of([first.id])[first.id].verdict is None
    key(view, "ArrowDown")  # the next prompt, same seed, same frame
    assert view.lightbox["run"] == sweep[4].id and view.lightbox["frame"] == 1
    key(view, "x")
    assert seqnb_ledger.marks_of([sweep[4].id])[sweep[4].id].verdict == "rejected"
    key(view, "ArrowDown")
    key(view, "ArrowDown")  # past the last row: stays, says so
    assert view.lightbox["run"] == sweep[8].id and "no further run" in view.message
    key(view, "ArrowUp")
    assert view.lightbox["run"] == sweep[4].id
    key(view, "Escape")
    assert view.lightbox == {"open": False}
    view.handle_message({"action": "rate", "n": 3})  # nothing open: nothing marked
    assert seqnb_ledger.marks_of([sweep[4].id])[sweep[4].id].rating is None
    view.open_frame(sweep[4].id, 2)
    view.rate(9)
    assert "1 to 5" in view.message
    view.handle_message({"action": "launch"})
    assert "does not know the action" in view.message
    view.close()


def test_the_keys_go_on_past_a_series_to_the_next_along_the_row_and_f_to_the_next_table(
    seqnb_client: seqnb.Client,
) -> None:
    runs = seqnb_client.sweep(
        prompts=[STYLE + s for s in STYLES[:2]], seeds=[1, 2], models=["seedream-4.0", "seedream-4.5"], quiet=True
    )
    seqnb_client.wait_all(runs, timeout=60)
    seqnb_client.settle(timeout=60)
    view = seqnb.matrix(runs, rows="prompt", cols="seed", facet="model")
    m = view.matrix
    assert [h.label for h in m.facets] == ["seedream-4.0", "seedream-4.5"]
    (wide,) = view.snapshot["cells"][0][0]  # 4.0's frames are 2560x1440: sent 16:9, not cropped to squares
    assert [(f["w"], f["h"]) for f in wide["frames"]] == [(96, 54)] * 3 and wide["aspect"] == round(2560 / 1440, 4)
    first, second = m.cell(0, 0, 0)[0], m.cell(0, 1, 0)[0]
    view.open_frame(first.id, 2)  # the last frame of the first series
    key(view, "ArrowRight")  # on to the first frame of the next series along the row
    assert (view.lightbox["run"], view.lightbox["frame"]) == (second.id, 0)
    assert view.lightbox["where"] == "seedream-4.0 · …ink drawing · seed 2"
    key(view, "ArrowLeft")  # and back, to the last frame of the previous one
    assert (view.lightbox["run"], view.lightbox["frame"]) == (first.id, 2)
    view.open_frame(second.id, 2)
    key(view, "ArrowRight")  # the end of the row: the next row's first series
    assert (view.lightbox["run"], view.lightbox["frame"]) == (m.cell(1, 0, 0)[0].id, 0)
    view.open_frame(m.cell(1, 1, 0)[0].id, 2)
    key(view, "ArrowRight")  # the end of the table: stays, and says where to go
    assert view.lightbox["frame"] == 2 and "last series of this table (f: the next table)" in view.message
    view.open_frame(first.id, 1)
    view.handle_message({"action": "step_facet", "step": 1})  # the key f: the same place in the next table
    assert (view.lightbox["run"], view.lightbox["frame"]) == (m.cell(0, 0, 1)[0].id, 1)
    assert view.snapshot["page"]["facet"] == 1 and view.lightbox["model"] == "seedream-4.5"
    view.handle_message({"action": "step_facet", "step": -1})  # Shift+F: back
    assert view.lightbox["run"] == first.id and view.message == ""
    view.close_lightbox()
    view.handle_message({"action": "step_facet", "step": 1})  # f without the lightbox: the page shows the next table
    assert view.snapshot["page"]["facet"] == 1 and view.lightbox == {"open": False}
    view.set_axes("prompt", "seed", None)
    view.step_facet(1)
    assert "one table only" in view.message
    view.close()


def test_marks_are_read_back_in_a_new_process(sweep: seqnb.Sweep, seqnb_ledger: Ledger, tmp_path: Path) -> None:
    view = seqnb.matrix(sweep)
    view.open_frame(sweep[5].id, 2)
    view.rate(4)
    view.pick()
    view.close()
    script = (
        "import sys, seqnb\n"
        "from seqnb.images.cache import ImageCache\n"
        "ledger = seqnb.Ledger(sys.argv[1])\n"
        "gallery = seqnb.Gallery(ImageCache(sys.argv[2]), ledger=ledger)\n"
        "view = seqnb.matrix(ledger.runs(sweep=sys.argv[3]), ledger=ledger, gallery=gallery)\n"
        "cells = [run for row in view.snapshot['cells'] for cell in row for run in cell]\n"
        "(mine,) = [r for r in cells if r['id'] == sys.argv[4]]\n"
        "print(mine['verdict'], mine['frames'][2]['rating'], mine['frames'][0]['src'][:23], len(cells))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(seqnb_ledger.path), str(tmp_path / "images"), sweep.id, sweep[5].id],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert out.stdout.split() == ["picked", "4", "data:image/jpeg;base64,", "12"]


def test_states_failed_short_and_running_are_visible(tmp_path: Path) -> None:
    ok = RunCore(Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=1))
    failed = RunCore(Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=2), status="failed")
    failed.error = "the service refused the input"
    running = RunCore(Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=3), status="in_progress")
    short = RunCore(Request("seedream-4.5", "Generate 2 images of a fox", count=2, seed=4), status="completed")
    short.images = [
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
    ]
    gallery = seqnb.Gallery(ImageCache(tmp_path / "images"))
    view = MatrixView([ok, failed, running, short], gallery=gallery)
    cells = {run["id"]: run for cell in view.snapshot["cells"][0] for run in cell}
    assert cells[failed.id]["state"] == "failed" and cells[failed.id]["words"] == "the service refused the input"
    assert cells[running.id]["state"] == "running" and [f["state"] for f in cells[running.id]["frames"]] == [
        "waiting",
        "waiting",
    ]
    assert cells[short.id]["state"] == "short" and cells[short.id]["words"] == "1 of 2 returned"
    assert [f["state"] for f in cells[short.id]["frames"]] == ["cached", "not_returned"]
    assert cells[short.id]["frames"][1]["label"] == "not returned"
    assert cells[ok.id]["state"] == "queued"  # created: not sent yet
    assert view.snapshot["marks"] is False
    view.open_frame(short.id, 1)
    assert view.lightbox["frame_state"] == "not_returned"
    view.pick()
    assert "ledger" in view.message  # marks need a ledger; nothing pretends
    view.close()


def test_paging_a_20_by_20_matrix_keeps_the_widget_count_flat(tmp_path: Path) -> None:
    runs = [
        RunCore(Request("seedream-4.5", f"Generate 2 images of lantern number {p}", count=2, seed=s))
        for p in range(20)
        for s in range(20)
    ]
    gallery = seqnb.Gallery(ImageCache(tmp_path / "images"))
    before = live_widgets()
    view = MatrixView(runs, page_rows=4, page_cols=5, gallery=gallery)
    opened = live_widgets()
    seen: set[str] = set()
    for row_page in range(5):
        for col_page in range(4):
            assert (view.snapshot["page"]["row_page"], view.snapshot["page"]["col_page"]) == (row_page, col_page)
            assert len(view.snapshot["rows"]) == 4 and len(view.snapshot["cols"]) == 5
            seen.update(run["id"] for row in view.snapshot["cells"] for cell in row for run in cell)
            view.handle_message({"action": "page", "cols": 1})
        view.handle_message({"action": "page", "rows": 1, "cols": -4})
        assert live_widgets() == opened
    assert len(seen) == 400
    view.open_frame(runs[399].id, 1)  # the lightbox on a run of another page: the page behind follows it
    assert (view.snapshot["page"]["row_page"], view.snapshot["page"]["col_page"]) == (4, 3)
    view.close_lightbox()
    view.swap()
    view.handle_message({"action": "axes", "rows": "seed", "cols": "prompt", "facet": None})
    assert live_widgets() == opened
    view.close()
    assert live_widgets() <= before + 1 and opened - before <= 2


def test_promote_states_the_sum_and_sends_only_on_the_confirm_click(
    sweep: seqnb.Sweep, seqnb_client: seqnb.Client, emu: EmulatorServer
) -> None:
    view = seqnb.matrix(sweep)
    assert view.snapshot["promote"] == []
    for run in (sweep[0], sweep[7]):
        view.open_frame(run.id, 0)
        view.pick()
    view.close_lightbox()
    assert view.snapshot["promote"] == ["4K", "4096x4096", "same settings"]  # optimize is a 4.0 option: not offered
    before = emu.counters.submits
    offer = view.handle_message({"action": "promote", "choice": "4K"})  # the Promote button: priced, nothing sent
    assert offer["button"] == "Confirm: promote 2 runs, USD 0.24" and view.offer == offer
    assert emu.counters.submits == before and len(seqnb_client.runs()) == 12
    promoted = view.handle_message({"action": "confirm"})  # the second click, on the button that states the sum
    assert view.offer == {} and "promoted 2 picked series (4K)" in view.message
    (sent,) = promoted
    assert [r.parent_id for r in sent] == [sweep[0].id, sweep[7].id]
    assert [r.request.size for r in sent] == ["4K", "4K"]
    assert sent.plan.kind == "promote" and str(sent.plan.total["USD"]) == "0.24"
    seqnb_client.wait_all(sent, timeout=60)
    assert emu.counters.submits == before + 2
    assert seqnb_client.ledger is not None
    family = seqnb_client.ledger.lineage(sweep[7].id)
    assert list(family["generation"]) == [0, 1] and family["id"][1] == sent[1].id
    # under their originals, badged: the original's cell shows its promoted child
    assert len(view.matrix.runs) == 14 and view.matrix.unplaced() == []
    assert view.matrix.cell(0, 0) == (sweep[0].aio, sent[0].aio)
    cell = view.refresh()["cells"][0][0]
    assert [(r["id"], r["made"], r["parent"], r["label"]) for r in cell] == [
        (sweep[0].id, "", "", ""),
        (sent[0].id, "promoted", sweep[0].id, "4K"),
    ]
    box = view.open_frame(sent[0].id, 0)
    assert box["made"] == "promoted" and box["parent"] == sweep[0].id and box["where"] == "…ink drawing · seed 1 · 4K"
    view.close()


def test_promoting_the_same_pick_twice_sends_one_paid_submit_unless_again_is_chosen(
    sweep: seqnb.Sweep, seqnb_client: seqnb.Client, emu: EmulatorServer
) -> None:
    view = seqnb.matrix(sweep)
    view.open_frame(sweep[5].id, 0)
    view.pick()
    view.close_lightbox()
    before = emu.counters.submits
    (child,) = seqnb_client.promote([sweep[5]], resolution="4K", quiet=True)  # promoted from code first
    seqnb_client.wait_all([child], timeout=60)
    assert emu.counters.submits == before + 1
    view.refresh()
    assert view.matrix.parents == {child.id: sweep[5].id}  # the matrix saw it: under its original
    offer = view.offer_promote("4K")
    assert offer["runs"] == 0 and offer["button"] == "" and offer["already"] == [sweep[5].id]
    assert "already" in view.message and sweep[5].id in view.message
    assert view.confirm_promote() == [] and "nothing to confirm" in view.message
    assert emu.counters.submits == before + 1  # not sent again
    offer = view.handle_message({"action": "promote", "choice": "4K", "again": True})  # the explicit choice
    assert offer["again"] and offer["button"] == "Confirm: promote 1 run, USD 0.12"
    (again,) = view.confirm_promote()
    assert "identical request" in view.message  # the client's warning, said where the click was
    seqnb_client.wait_all(again, timeout=60)
    assert emu.counters.submits == before + 2 and again[0].parent_id == sweep[5].id
    view.close()


def test_a_pick_promoted_in_an_earlier_session_shows_under_it_and_is_not_sent_again(
    sweep: seqnb.Sweep, seqnb_client: seqnb.Client, seqnb_ledger: Ledger, emu: EmulatorServer, tmp_path: Path
) -> None:
    sweep[2].pick()
    (child,) = seqnb_client.promote([sweep[2]], resolution="4K", quiet=True)
    seqnb_client.wait_all([child], timeout=60)
    seqnb_client.settle(timeout=60)
    later = seqnb.connect(emu.token, emu.base_url, ledger=seqnb_ledger, download=ImageCache(tmp_path / "images"))
    try:  # a new session: the sweep's runs read from the ledger, the client knows none of them
        view = seqnb.matrix(seqnb_ledger.runs(sweep=sweep.id), ledger=seqnb_ledger, client=later)
        assert view.matrix.parents == {child.id: sweep[2].id}
        (cell,) = [c for row in view.snapshot["cells"] for c in row if c and c[0]["id"] == sweep[2].id]
        assert [(r["id"], r["made"]) for r in cell] == [(sweep[2].id, ""), (child.id, "promoted")]
        before = emu.counters.submits
        offer = view.offer_promote("4K")
        assert offer["runs"] == 0 and offer["already"] == [sweep[2].id]
        assert emu.counters.submits == before
        view.close()
    finally:
        later.close()


def test_picks_that_mix_models_get_per_model_choices(seqnb_client: seqnb.Client, emu: EmulatorServer) -> None:
    runs = seqnb_client.sweep(
        prompts=["Generate 2 images of a heron"], seeds=[1, 2], models=["seedream-4.0", "seedream-4.5"], quiet=True
    )
    seqnb_client.wait_all(runs, timeout=60)
    seqnb_client.settle(timeout=60)
    older = next(r for r in runs if r.model.endswith("4-0/sequential"))
    newer = next(r for r in runs if r.model.endswith("4-5/sequential"))
    view = seqnb.matrix(runs)
    for run in (older, newer):
        view.open_frame(run.id, 0)
        view.pick()
    choices = view.snapshot["promote"]
    assert "4K" not in choices  # 4.0 has no 4K: not offered as if every pick had it
    both = "4K on seedream-4.5 · optimize standard on seedream-4.0"
    assert choices[:2] == [both, "4K on seedream-4.5 · seedream-4.0 left out"] and choices[-1] == "same settings"
    offer = view.offer_promote("4K on seedream-4.5 · seedream-4.0 left out")
    assert offer["runs"] == 1 and offer["left_out"] == [older.id] and older.id in offer["notes"][0]
    offer = view.offer_promote(both)
    assert offer["button"] == "Confirm: promote 2 runs, USD 0.14" and offer["left_out"] == []
    before = emu.counters.submits
    sent = view.confirm_promote()
    children = [r for sweep in sent for r in sweep]
    seqnb_client.wait_all(children, timeout=60)
    assert emu.counters.submits == before + 2
    made = {r.parent_id: (r.request.get("size"), r.request.get("optimize")) for r in children}
    assert made[newer.id][0] == "4K" and made[older.id][1] == "standard"
    assert made[older.id][0] == older.request.get("size")  # 4.0 keeps its size
    view.offer_promote("4K")
    said = html.unescape(view.message)
    assert "Promote offers" in said and "not '4K'" in said and older.id in said and view.offer == {}
    view.close()


def test_the_gallery_tab_has_a_matrix_mode_for_a_sweep(sweep: seqnb.Sweep, seqnb_client: seqnb.Client) -> None:
    other = seqnb_client.sweep(prompts=["Generate 2 images of an owl"], seeds=[1, 2], quiet=True)
    seqnb_client.wait_all(other, timeout=60)
    seqnb_client.settle(timeout=60)
    studio = seqnb.Studio(seqnb_client)
    studio.show_tab("Gallery")
    view = studio.gallery_view
    view.mode.value = "matrix"  # as the toggle does
    assert [i for _, i in view.sweep_picker.options] == [other.id, sweep.id]  # newest first
    assert view.matrix is not None and {r.id for r in view.matrix.matrix.runs} == {r.id for r in other}
    count = live_widgets()
    view.sweep_picker.value = sweep.id
    assert view.matrix.snapshot["total"] == {"runs": 12, "made": 0, "rows": 3, "cols": 4, "picked": 0}
    assert live_widgets() == count  # the old matrix closed
    view.matrix.open_frame(sweep[2].id, 1)
    view.matrix.rate(3)
    assert seqnb_client.ledger is not None
    assert seqnb_client.ledger.marks_of([sweep[2].id])[sweep[2].id].frame_ratings == {1: 3}
    view.mode.value = "recent"
    assert view.matrix_box.layout.display == "none" and view.body.layout.display == ""
    studio.close()


def test_a_matrix_opened_while_the_sweep_runs_catches_up(seqnb_client: seqnb.Client) -> None:
    runs = seqnb_client.sweep(
        prompts=["Generate 2 images of an owl", "Generate 2 images of a bat"], seeds=[1, 2], quiet=True
    )
    view = seqnb.matrix(runs)
    states = {run["state"] for row in view.snapshot["cells"] for cell in row for run in cell}
    assert states <= {"queued", "running", "completed", "loading"}
    seqnb_client.wait_all(runs, timeout=60)
    seqnb_client.settle(timeout=60)

    def cells() -> list[dict[str, Any]]:
        return [run for row in view.snapshot["cells"] for cell in row for run in cell]

    # the runs' events refresh the page (coalesced, on the client's loop) until every image is in
    until(lambda: [run["state"] for run in cells()] == ["completed"] * 4, timeout=30)
    snap = view.snapshot
    assert all(f["src"].startswith("data:image/jpeg") for run in cells() for f in run["frames"])
    assert view.refresh() == snap  # shown again from the memo: the same page, no file read
    view.close()
