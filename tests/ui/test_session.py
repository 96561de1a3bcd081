"""One session per kernel (issue #30): every client, Studio and ledger view in a kernel shows the same runs, each
named by what tells it apart, and a Studio made after a restart fills from the ledger.

Each test is a kernel of its own (tests/conftest.py gives it a fresh ``KernelSession``); a restart is a new one.
"""

from __future__ import annotations

import html
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import ipywidgets as w
import pytest

import seqnb
import seqnb.session
from seqnb.emulator import EmulatorServer, ManualClock
from seqnb.images.cache import ImageCache
from seqnb.testing import emulator
from seqnb.ui.studio import Studio

KEEPER = "Generate 3 images of a lighthouse keeper's day on a stormy northern island, from dawn to dusk, in {}"
STYLES = ("watercolour", "ink", "oil paint")
MODELS = ["seedream-4.0", "seedream-4.5"]


def until(check: Callable[[], bool], timeout: float = 30, state: Callable[[], object] = lambda: None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"condition not met in time: {state()}"
        time.sleep(0.02)


def style_of(prompt: str) -> str:
    return next(s for s in STYLES if prompt.endswith(s))


def connect(emu: EmulatorServer, tmp_path: Path) -> seqnb.Client:
    return seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))


def captions(grid: w.Widget) -> list[str]:
    """The row captions of a series grid, as shown (HTML)."""
    return [row.children[0].value for row in grid.children[0].children]


def test_a_studio_made_after_connect_shows_that_clients_runs_by_their_labels(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    client = connect(emu, tmp_path)
    runs = client.sweep(prompts=[KEEPER.format(s) for s in STYLES], seeds=[1, 2], models=MODELS, quiet=True)
    client.wait_all(runs, timeout=60)
    client.settle()

    studio = seqnb.Studio()  # a later cell, as the README shows it
    assert studio.client is client
    board = studio.board.flush()
    assert board["summary"] == "12 runs: 12 completed"
    rows = {r["id"]: r for r in board["rows"]}
    for run in runs:  # each row names its differing word, its model and seed; the whole prompt is its title
        row = rows[run.id]
        assert style_of(run.request.prompt) in row["label"] and board["prompts"][row["prompt"]] == run.request.prompt
        assert (row["model"], row["seed"]) == (run.request.model.short_name, run.request.resolved()["seed"])
        assert row["said"] == [row["model"], f"seed {row['seed']}"]  # the label says both: the meta line need not
    assert len(board["prompts"]) == 3  # each whole prompt sent once
    (sweep_row,) = board["sweeps"]
    assert "(watercolour / ink / oil paint)" in sweep_row["label"] and "2 seeds × 2 models" in sweep_row["label"]

    studio.show_tab("Gallery")
    until(lambda: not studio.gallery_view.stale and "12 completed runs" in studio.gallery_view.label.value)
    shown = captions(studio.gallery_view.body.children[0])
    assert len(shown) == 4 and all(any(s in c for s in STYLES) and "seedream-4." in c for c in shown)
    assert all('title="Generate 3 images of a lighthouse keeper' in c for c in shown)  # the whole prompt on hover
    assert all(c.count("1:1") + c.count("16:9") == 1 for c in shown)  # the size said once, by its ratio

    studio.show_tab("Ledger")
    options = [label for label, _ in studio.ledger_view.selection.options]
    assert len(options) == 12 and all(any(s in o for s in STYLES) for o in options)
    assert all("seedream-4." in o and " seed " in o for o in options)  # model and seed beside each other
    picker = [label for label, value in studio.ledger_view.sweep.options if value == runs.id]
    assert picker and "(watercolour / ink / oil paint)" in picker[0] and picker[0].endswith("12 runs")
    studio.ledger_view.selection.value = (runs[0].id,)
    assert html.escape(runs[0].request.prompt) in studio.ledger_view.prompts.value  # the whole prompt, chosen run

    studio.gallery_view.set_mode("matrix")
    matrix_names = dict((v, k) for k, v in studio.gallery_view.sweep_picker.options)
    assert "(watercolour / ink / oil paint)" in matrix_names[runs.id] and not matrix_names[runs.id].startswith("sw-")
    studio.close()
    client.close()


def test_a_studio_shows_the_runs_of_every_client_connected_in_the_kernel(emu: EmulatorServer, tmp_path: Path) -> None:
    first = connect(emu, tmp_path)
    early = first.submit(seqnb.Request("seedream-4.5", KEEPER.format("ink"), count=3, seed=1)).wait(30)
    studio = seqnb.Studio()
    assert studio.client is first
    second = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))
    late = second.submit(seqnb.Request("seedream-4.0", KEEPER.format("oil paint"), count=3, seed=2)).wait(30)
    board = studio.board.flush()
    assert board["summary"] == "2 runs: 2 completed"
    assert {r["id"] for r in board["rows"]} == {early.id, late.id}
    assert studio.board.cancel(late.id) == "not_cancellable" or late.status == "completed"  # its own client acts
    assert seqnb.Studio().client is second  # a new Studio composes with the client connected last
    second.close()
    assert seqnb.Studio().client is first  # a closed client leaves the session
    studio.close()
    first.close()


def test_after_a_restart_a_new_studio_fills_from_the_ledger_and_resumes_the_runs_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()  # jobs end only when the test moves the clock: some are still running at the "restart"
    with emulator(workers=8, queue_wait=0, service_time=1.0, clock=clock) as emu:
        before = connect(emu, tmp_path)
        done = before.sweep(prompts=[KEEPER.format(s) for s in STYLES], seeds=[1], models=MODELS, quiet=True)
        until(lambda: all(r.status == "in_progress" for r in done), state=lambda: [r.status for r in done])
        clock.advance(1.5)
        before.wait_all(done, timeout=30)
        before.settle()
        flying = before.sweep(prompts=[KEEPER.format(s) for s in STYLES[:2]], seeds=[7], quiet=True)
        until(lambda: all(r.status == "in_progress" for r in flying), state=lambda: [r.status for r in flying])
        before.close()  # the kernel goes; two runs are still running at the service
        with sqlite3.connect(tmp_path / "l.sqlite") as db:  # rows written before runs had labels
            db.execute("UPDATE runs SET label = NULL WHERE sweep_id = ?", (done.id,))

        monkeypatch.setattr(seqnb.session, "_KERNEL", seqnb.session.KernelSession())  # a new kernel
        after = connect(emu, tmp_path)
        studio = seqnb.Studio()
        board = studio.board.flush()
        assert board["total"] == 8 and board["counts"]["completed"] == 6
        rows = {r["id"]: r for r in board["rows"]}
        for run in done:  # read back, read-only, named by their differing words although their rows had no label
            assert rows[run.id]["read_only"] and not rows[run.id]["cancellable"]
            assert style_of(run.request.prompt) in rows[run.id]["label"] and "seedream-4." in rows[run.id]["label"]
        assert studio.board.cancel(done[0].id) == "read_only" and "client.resume()" in studio.board.message
        resumed = {r.id for r in after.runs()}
        assert resumed == {r.id for r in flying}  # the runs in flight are the new client's, watched again
        assert all(not rows[i]["read_only"] for i in resumed)
        clock.advance(1.5)
        until(lambda: studio.board.flush()["summary"] == "8 runs: 8 completed", state=lambda: studio.board.snapshot)

        studio.show_tab("Gallery")  # Recent: the runs of before from the image cache, and the resumed ones
        until(
            lambda: (
                "8 completed runs" in studio.gallery_view.label.value
                and "downloading" not in studio.gallery_view.label.value
            ),
            state=lambda: studio.gallery_view.label.value,
        )
        studio.gallery_view.turn(1)
        until(lambda: not studio.gallery_view.stale and "downloading" not in studio.gallery_view.label.value)
        older = captions(studio.gallery_view.body.children[0])
        assert len(older) == 4 and all(any(s in c for s in STYLES) for c in older)
        frames = [len(row.children[1].children) for row in studio.gallery_view.body.children[0].children[0].children]
        assert frames == [3, 3, 3, 3]

        studio.show_tab("Ledger")
        names = dict((v, k) for k, v in studio.ledger_view.sweep.options)
        assert "(watercolour / ink / oil paint)" in names[done.id] and names[done.id].endswith("6 runs")
        studio.ledger_view.sweep.value = done.id
        assert all(any(s in label for s in STYLES) for label, _ in studio.ledger_view.selection.options)

        again = seqnb.Studio()  # a second Studio of the kernel shows the same runs, read back once
        assert again.board.flush()["total"] == 8
        again.close()
        studio.close()
        after.close()


def test_the_studios_saved_copy_lists_the_sessions_runs_by_their_labels(emu: EmulatorServer, tmp_path: Path) -> None:
    client = connect(emu, tmp_path)
    runs = client.sweep(prompts=[KEEPER.format(s) for s in STYLES], seeds=[1], quiet=True)
    client.wait_all(runs, timeout=60)
    studio = seqnb.Studio()
    bundle = studio._repr_mimebundle_()
    assert bundle is not None
    page = bundle["text/html"]
    assert "3 run(s) in this session: 3 completed" in page and "live only with a running kernel" in page
    for run in runs:
        assert f">{run.label}<" in page and run.id in page
    assert 'title="Generate 3 images of a lighthouse keeper' in page
    studio.close()
    client.close()


def test_fix_buttons_show_their_whole_label_and_the_count_field_is_called_count(emu: EmulatorServer) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=False, download=False)
    studio = Studio(client)
    panel = studio.panel
    assert panel.count.description == "Count"  # as the problems and their fixes call it
    panel.prompt.value = "Generate 4 images of a lighthouse keeper's day on a stormy northern island"
    panel.count.value = 3
    row = panel.problems.children[0]
    problem = panel.last_report.problems[0] if panel.last_report is not None else None
    assert problem is not None and problem.field == "count"
    buttons = [c for c in row.children if isinstance(c, w.Button)]
    assert [b.description for b in buttons] == [f.label for f in problem.fixes]
    assert all(b.layout.flex == "0 0 auto" for b in buttons)  # a long problem text never squeezes them
    assert studio.balance.layout.flex == "0 0 auto" and "white-space:nowrap" in studio.balance.value
    studio.close()
    client.close()


def test_a_sweep_of_thousands_of_runs_is_read_back_whole_or_says_what_it_left_out(
    emu: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = connect(emu, tmp_path)
    made = before.sweep(prompts=[KEEPER.format("ink")], seeds=[1, 2], quiet=True)
    before.wait_all(made, timeout=30)
    before.close()
    with sqlite3.connect(tmp_path / "l.sqlite") as db:  # the rest of a 2,600-run sweep, its rows as seqnb wrote them
        columns = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
        row = dict(
            zip(columns, db.execute("SELECT * FROM runs WHERE sweep_id = ?", (made.id,)).fetchone(), strict=True)
        )
        copies = [{**row, "id": f"copy{i:05d}", "created_at": row["created_at"] - 1 - i} for i in range(2_598)]
        db.executemany(
            f"INSERT INTO runs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [tuple(c[k] for k in columns) for c in copies],
        )

    monkeypatch.setattr(seqnb.session, "_KERNEL", seqnb.session.KernelSession())  # a new kernel
    studio = seqnb.Studio(connect(emu, tmp_path))
    board = studio.board.flush()
    assert board["total"] == 2_600  # every run of the sweep, its oldest too
    assert sum(1 for r in seqnb.session.kernel_session().runs() if r.sweep_id == made.id) == 2_600
    assert studio.board.message == "" and "left out" not in repr(seqnb.session.kernel_session())
    studio.close()

    monkeypatch.setattr(seqnb.session, "HISTORY_READ_BACK", 1_000)  # a kernel that may hold fewer
    monkeypatch.setattr(seqnb.session, "_KERNEL", seqnb.session.KernelSession())
    studio = seqnb.Studio(connect(emu, tmp_path))
    assert studio.board.flush()["total"] == 1_000
    said = repr(seqnb.session.kernel_session())
    assert f"sweep {made.id}: its newest 1,000 of 2,600 runs read back" in said
    assert f"ledger.runs(sweep={made.id!r})" in said and "Ledger tab" in said
    assert html.unescape(studio.board.message) in said
    studio.close()
