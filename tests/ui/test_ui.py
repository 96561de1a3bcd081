"""The widgets driven as a user would: set values, click, and check the screen, the emulator and the ledger."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipywidgets as w
import pytest

import seqnb
from seqnb.emulator import EmulatorServer, ManualClock
from seqnb.images.cache import ImageCache
from seqnb.testing import emulator
from seqnb.ui.job_board import JobBoard
from seqnb.ui.ledger_view import LedgerView
from seqnb.ui.request_panel import RequestPanel, parse_seeds
from seqnb.ui.studio import Studio


def until(check: Callable[[], bool], timeout: float = 20, state: Callable[[], object] = lambda: None) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"condition not met in time: {state()}"
        time.sleep(0.02)


@pytest.fixture
def client(emu: EmulatorServer, tmp_path: Path) -> Iterator[seqnb.Client]:
    c = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c"))
    yield c
    c.close()


def texts(box: w.Widget) -> str:
    out = []
    for child in getattr(box, "children", ()):
        out.append(getattr(child, "value", "") if isinstance(child, w.HTML) else texts(child))
    return " ".join(str(x) for x in out)


def test_panel_shows_problems_offers_fixes_and_blocks_submit(client: seqnb.Client, emu: EmulatorServer) -> None:
    panel = RequestPanel(client)
    panel.prompt.value = "Generate 4 images of a paper boat in the rain"
    panel.count.value = 3
    assert panel.submit_button.disabled
    assert "prompt asks for 4" in texts(panel.problems)
    fix_buttons = [c for row in panel.problems.children for c in row.children if isinstance(c, w.Button)]
    assert [b.description for b in fix_buttons] == ["set count to 4", "rewrite the prompt to say 3"]
    fix_buttons[0].click()
    assert panel.count.value == 4 and not panel.submit_button.disabled and panel.problems.children == ()
    assert "USD 0.16" in panel.cost.value
    assert panel.submit() is not None
    panel.seed.value = 77
    panel.lock.value = True
    panel.submit_button.click()
    until(lambda: emu.counters.submits == 2)
    assert panel.seed.value == 77  # locked: the dice did not roll
    assert client.ledger is not None and len(client.ledger.runs()) == 2
    assert set(client.ledger.runs()["seed"].dropna()) >= {77}


def test_fields_follow_the_model_and_the_counter_counts(client: seqnb.Client) -> None:
    panel = RequestPanel(client)
    panel.model.value = "seedream-4.0"
    assert "2560:1440 (16:9)" in panel.size.options and panel.optimize.layout.display == ""
    panel.model.value = "seedream-4.5"
    assert "2K" in panel.size.options and panel.optimize.layout.display == "none"
    panel.prompt.value = "Generate 3 images of " + "a" * 600
    assert "621 / 599 characters" in panel.counter.value and "#b00020" in panel.counter.value
    assert panel.submit_button.disabled and "shorten it by 22 characters" in texts(panel.problems)
    panel.prompt.value = "a fox"
    assert not panel.submit_button.disabled and "does not say how many images" in texts(panel.problems)
    panel.lock.value = False
    before = panel.seed.value
    panel.dice.click()
    assert panel.seed.value != before


def test_sweep_mode_counts_prices_and_respects_the_budget(client: seqnb.Client, emu: EmulatorServer) -> None:
    panel = RequestPanel(client)
    panel.sweep_mode.value = True
    assert panel.sweep_box.layout.display == ""
    panel.sweep_prompts.value = "Generate 2 images of a cat\nGenerate 3 images of a dog"
    panel.sweep_seeds.value = "1-3, 9"
    panel.sweep_models.value = ("seedream-4.5",)
    panel.budget.value = "0.50"
    assert "8 runs, 20 images, estimated <b>USD 0.80</b>" in panel.sweep_summary.value
    assert "over budget" in panel.sweep_summary.value and panel.sweep_button.disabled
    panel.sweep_button.click()
    assert emu.counters.submits == 0 and "not sent" in panel.message.value
    panel.budget.value = "1.00"
    assert not panel.sweep_button.disabled
    panel.sweep_button.click()
    until(lambda: emu.counters.submits == 8)
    panel.sweep_seeds.value = "1-x"
    assert "1-x" in panel.sweep_summary.value and "not a number or a range" in panel.sweep_summary.value
    assert panel.sweep_button.disabled
    assert parse_seeds("1, 4-6") == [1, 4, 5, 6]


def row(board: JobBoard, run_id: str) -> dict[str, Any]:
    """The board's row for a run, as the last snapshot sent to the browser has it."""
    return next((r for r in board.snapshot["rows"] if r["id"] == run_id), {})


def test_job_board_moves_and_cancels_honestly(tmp_path: Path) -> None:
    clock = ManualClock()  # the first job runs and the second waits until the test moves the clock
    with emulator(workers=1, queue_wait=0, service_time=0.8, clock=clock) as emu:
        client = seqnb.connect(emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=False)
        board = JobBoard(client)
        running = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a kite", count=2, seed=1))
        until(lambda: running.request_id is not None)  # sends run side by side: the first must arrive first
        queued = client.submit(seqnb.Request("seedream-4.5", "Generate 2 images of a kite", count=2, seed=2))
        until(
            lambda: running.status == "in_progress" and queued.status == "in_queue",
            20,
            lambda: (running.summary(), queued.summary()),
        )
        until(lambda: row(board, running.id).get("status") == "in_progress")  # sent by the coalesced flush
        until(lambda: row(board, queued.id).get("position") == 0)  # its position comes with its first poll
        assert row(board, queued.id)["cancellable"] and not row(board, running.id)["cancellable"]
        assert row(board, running.id)["started"] is not None and row(board, running.id)["finished"] is None
        board.handle_message({"action": "cancel", "run": queued.id})  # what a click on its Cancel sends
        assert "cancelled; nothing is charged" in board.message and queued.status == "cancelled"
        assert board.cancel(running.id) == "not_cancellable"
        assert "cannot cancel it" in board.message
        clock.advance(1.0)
        until(lambda: running.status == "completed")
        until(lambda: row(board, running.id).get("images") == 2)
        done = row(board, running.id)
        assert done["bucket"] == "completed" and not done["cancellable"] and done["finished"] >= done["created"]
        assert board.snapshot["summary"] == "2 runs: 1 completed, 1 cancelled"
        assert board.snapshot["cancellable"] == 0
        board.handle_message({"action": "dance"})
        assert "does not know the action" in board.message
        client.close()


def test_ledger_view_filters_compares_and_reruns(client: seqnb.Client, emu: EmulatorServer) -> None:
    runs = client.sweep(prompts=["Generate 2 images of an owl", "Generate 2 images of a bat"], seeds=[1, 2], quiet=True)
    client.wait_all(runs, timeout=30)
    assert client.ledger is not None
    view = LedgerView(client.ledger, client, client.gallery)
    assert len(view.selection.options) == 4
    view.text.value = "owl"
    assert len(view.selection.options) == 2 and "charged" in view.spend.value
    view.selection.value = tuple(value for _, value in view.selection.options)
    assert "seed" in view.compare_table.value and "prompt" not in view.compare_table.value
    until(lambda: isinstance(view.compare_box.children[0], w.VBox))  # images still downloading are fetched first
    grid = view.compare_box.children[0]
    assert [len(row.children[1].children) for row in grid.children[0].children] == [2, 2]
    assert view.rerun_button.disabled  # two selected
    view.selection.value = (view.selection.options[0][1],)
    view.rerun_button.click()
    until(lambda: emu.counters.submits == 5)
    child = client.ledger.runs(status=None).iloc[0]
    assert child["parent_id"] == view.selection.value[0]


def test_studio_shows_the_backend_and_never_keeps_a_typed_token(
    client: seqnb.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio = Studio(client)
    assert "offline emulator" in studio.backend.value
    assert [studio.tabs.get_title(i) for i in range(4)] == ["Compose", "Runs", "Gallery", "Ledger"]
    secret = "sk-typed-into-the-field-123"
    monkeypatch.setenv("RUNCOMFY_BASE_URL", client.backend.base_url)  # stay on loopback for the test
    studio.token.value = secret
    studio.connect_button.click()
    assert studio.token.value == ""
    assert "connected" in studio.message.value and secret not in studio.message.value
    state = json.dumps(w.Widget.get_manager_state(drop_defaults=False), default=str)
    assert secret not in state and secret not in repr(studio.client)
    assert studio.client.backend.token_source == "argument"


def test_studio_gallery_tab_shows_completed_runs(client: seqnb.Client) -> None:
    studio = Studio(client)
    run = client.submit(seqnb.Request("seedream-4.0", "Generate 2 images of a heron", count=2, seed=5)).wait(20)
    client.settle()
    studio.show_tab("Gallery")
    studio.show_recent()
    grid = studio.gallery_view.body.children[0]
    assert [len(row.children[1].children) for row in grid.children[0].children] == [2]
    assert run.id in [r.id for r in client.runs()]


def test_the_studio_header_shows_the_balance_and_the_panel_the_price_source(tmp_path: Path) -> None:
    with emulator(balance="25.00", prices={"seedream-4.5": "0.035"}) as emu:
        client = seqnb.connect(
            emu.token, emu.base_url, ledger=tmp_path / "l.sqlite", download=ImageCache(tmp_path / "c")
        )
        studio = seqnb.Studio(client)
        assert "balance USD 25.00" in studio.balance.value
        studio.panel.model.value = "seedream-4.5"
        studio.panel.check()
        assert "0.035" in studio.panel.cost.value and "catalog" in studio.panel.cost.value
        client.close()
