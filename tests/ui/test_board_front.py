"""The job board's front end is real files (static/board.js, board.css) and draws with the kernel's names only."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import seqnb
from seqnb.emulator import EmulatorServer
from seqnb.ui.board_state import BUCKETS, COLOURS, FILTERS, VOCABULARY, BoardState
from seqnb.ui.job_board import STATIC, JobBoard

ROOT = Path(__file__).parents[2]


def test_the_board_sends_board_js_and_board_css_from_disk(emu: EmulatorServer) -> None:
    client = seqnb.connect(emu.token, emu.base_url, ledger=False, download=False)
    board = JobBoard(client)
    state = board.get_state()
    assert state["_esm"] == (STATIC / "board.js").read_text(encoding="utf-8")
    assert state["_css"] == (STATIC / "board.css").read_text(encoding="utf-8")
    assert "export default { render }" in state["_esm"] and ".seqnb-board" in state["_css"]
    assert state["vocabulary"] == {"buckets": list(BUCKETS), "filters": list(FILTERS), "colours": COLOURS}
    board.close()
    client.close()


def test_the_names_have_one_source_the_python_side() -> None:
    """Every group has a colour, every group is a filter, and board.js holds none of the names or colours."""
    assert list(COLOURS) == list(BUCKETS) and set(BUCKETS) < set(FILTERS)
    snapshot = BoardState().snapshot(now=0)
    assert list(snapshot["counts"]) == VOCABULARY["buckets"] and VOCABULARY["filters"] == list(FILTERS)
    js = (STATIC / "board.js").read_text(encoding="utf-8")
    assert 'model.get("vocabulary")' in js
    assert not re.search(r"\b(BUCKETS|FILTERS|COLOURS)\b", js), "board.js keeps its own copy of the vocabulary"
    copied = [c for c in COLOURS.values() if c.lower() in js.lower()]
    copied += [b for b in FILTERS if f'"{b}"' in js or f"'{b}'" in js]
    assert not copied, f"board.js spells out names the kernel sends in `vocabulary`: {copied}"


def test_importing_the_board_starts_no_file_watcher() -> None:
    """anywidget watches _esm/_css files only with ANYWIDGET_HMR=1: by default nothing runs beside the kernel."""
    env = {k: v for k, v in os.environ.items() if k != "ANYWIDGET_HMR"}
    env["PYTHONPATH"] = str(ROOT)
    code = (
        "import threading\n"
        "from seqnb.ui.job_board import JobBoard\n"
        "print(type(JobBoard._esm).__name__, type(JobBoard._css).__name__, len(threading.enumerate()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["FileContents", "FileContents", "1"]
