"""seqnb inside a real Jupyter kernel (nbclient): cells return at once, runs move on between cells, wait() works."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow


def run_cells(*sources: str, timeout: int = 120) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
    NotebookClient(nb, timeout=timeout, kernel_name="python3").execute()
    return nb


def text_of(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)


def test_cells_return_at_once_and_runs_complete_between_cells() -> None:
    nb = run_cells(
        # cell 1: submit a sweep; the cell must return before any run finishes
        """
import os, time, seqnb
os.environ.pop("RUNCOMFY_TOKEN", None)
client = seqnb.connect()
t0 = time.monotonic()
runs = client.sweep(prompts=["Generate 3 images of a lighthouse at dusk"], seeds=range(4), quiet=True)
elapsed = time.monotonic() - t0
print("attached", client._runner.attached, "backend", client.backend.kind)
print("returned_in", round(elapsed, 3), "done_now", sum(r.done for r in runs))
""",
        # cell 2: keep working; the kernel's loop runs the poller between cells
        """
import asyncio
await asyncio.sleep(4)
print("states", sorted({r.status for r in runs}))
""",
        # cell 3: the blocking convenience call works inside the kernel
        """
extra = client.submit(seqnb.Request("seedream-4.0", "Generate 2 images of a harbour", count=2, seed=9))
extra.wait(30)
print("extra", extra.status, len(extra.images))
""",
    )
    first, second, third = (text_of(c) for c in nb.cells)
    assert "attached True" in first and "backend emulator" in first
    returned_in = float(first.split("returned_in ")[1].split()[0])
    assert returned_in < 0.5
    assert "done_now 0" in first
    assert "states ['completed']" in second
    assert "extra completed 2" in third


def test_cancel_clicked_on_a_running_run_in_a_kernel_says_it_will_finish_and_be_charged() -> None:
    """In a kernel the board's Cancel is scheduled on the loop (a click must not block); the outcome it then shows is
    the service's for that run: one already running cannot be cancelled, and is charged."""
    nb = run_cells(
        """
import asyncio, os, seqnb
from seqnb.ui.job_board import JobBoard
os.environ.pop("RUNCOMFY_TOKEN", None)
client = seqnb.connect(download=False)
run = client.submit(seqnb.Request("seedream-4.5", "Generate 15 images of a lighthouse", count=15, seed=3))
for _ in range(200):
    if run.status == "in_progress":
        break
    await asyncio.sleep(0.05)
board = JobBoard(client)
print("status", run.status, "click", board.cancel(run.id))
for _ in range(100):
    await asyncio.sleep(0.05)
    if "cancelling" not in board.message:
        break
print("message", board.message)
""",
    )
    out = text_of(nb.cells[0])
    assert "status in_progress click requested" in out
    assert "already running: the service cannot cancel it; it will finish and be charged" in out, out
