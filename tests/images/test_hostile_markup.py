"""Markup from a team ledger stays text: a run id and a prompt carrying HTML, in every page seqnb makes.

The grid's caption, the static copies a saved notebook keeps (``fallback``), the report and the two
widgets' front ends (``matrix.js``, ``board.js``). The real-browser proof for the matrix is
``tests/system/test_hostile_browser.py``; here is the fast path, on the HTML itself.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

import seqnb
from seqnb.images.grid import grid as series_grid
from seqnb.images.share import report_ledger
from seqnb.ui.matrix_view import MatrixView
from tests.images.test_report import page_data

RUN_ID = "<img src=x onerror=alert('id')>"
PROMPT = "Generate 2 images of a fox <img src=x onerror=alert('prompt')> \" onmouseover=\"alert('quote')\""
STATIC = Path(seqnb.__file__).parent / "ui" / "static"


@pytest.fixture
def hostile_run(seqnb_client: seqnb.Client) -> seqnb.AsyncRun:
    """A completed run of 2 frames, its id renamed in the ledger file to markup (as a teammate could)."""
    run = seqnb_client.submit(seqnb.Request("seedream-4.5", PROMPT, count=2, seed=5))
    run.wait(30)
    seqnb_client.settle()
    ledger = seqnb_client.ledger
    assert ledger is not None and ledger.path is not None
    with sqlite3.connect(ledger.path) as db:
        db.execute("UPDATE runs SET id=? WHERE id=?", (RUN_ID, run.id))
        db.execute("UPDATE images SET run_id=? WHERE run_id=?", (RUN_ID, run.id))
    return ledger.restore(RUN_ID)


def no_live_markup(markup: str) -> None:
    """No hostile element or attribute survives as markup: each shows only escaped."""
    assert "<img src=x" not in markup and 'onmouseover="alert' not in markup, markup[:2000]


def test_the_grids_caption_and_static_copy_escape_the_run_id_and_prompt(
    seqnb_client: seqnb.Client, hostile_run: seqnb.AsyncRun
) -> None:
    gallery = seqnb_client.gallery
    assert gallery is not None
    grid = series_grid(gallery, [hostile_run], size=64)
    rows, caption, _ = grid.children
    rows.children[0].children[1].children[0].show()  # a click on the first frame: the large view and its caption
    assert "run &lt;img src=x onerror=alert(&#x27;id&#x27;)&gt;" in caption.value
    no_live_markup(caption.value)
    no_live_markup(rows.children[0].children[0].value)  # the row's header
    bundle = grid._repr_mimebundle_()
    no_live_markup(bundle["text/html"])  # what a saved notebook shows


def test_the_matrix_widgets_static_copy_escapes_them(seqnb_client: seqnb.Client, hostile_run: seqnb.AsyncRun) -> None:
    view = MatrixView([hostile_run], "prompt", "seed", None, gallery=seqnb_client.gallery, ledger=seqnb_client.ledger)
    data, _ = view._repr_mimebundle_()
    no_live_markup(data["text/html"])
    assert RUN_ID in [r["id"] for row in view.snapshot["cells"] for cell in row for r in cell]  # sent as data
    view.close()


def test_the_report_keeps_them_as_data(seqnb_client: seqnb.Client, hostile_run: seqnb.AsyncRun, tmp_path: Path) -> None:
    ledger = seqnb_client.ledger
    assert ledger is not None
    page = report_ledger(ledger, tmp_path / "r.html", ids=[RUN_ID]).read_text()
    no_live_markup(page)
    assert page.count("<script") == 2 and page.count("</script>") == 2
    (run,) = page_data(page)["runs"]
    assert run["id"] == RUN_ID and run["prompt"] == PROMPT  # the page's script puts them in with textContent


@pytest.mark.parametrize("name", ["matrix.js", "board.js"])
def test_the_widgets_front_ends_write_markup_only_through_their_escaping_tag(name: str) -> None:
    """innerHTML is assigned in one place, put(), which takes only what html`...` made (every value escaped)."""
    js = (STATIC / name).read_text(encoding="utf-8")
    assert js.count("innerHTML =") == 1 and "node.innerHTML = markup.text;" in js
    assert "if (!(markup instanceof Markup)) throw" in js
    assert not re.search(r"(?<![\w.])`<", js), "a plain template literal making markup: use html`...`"
    assert "insertAdjacentHTML" not in js and "outerHTML" not in js and "document.write" not in js


def test_the_matrix_copy_names_the_rows_it_leaves_out_without_a_runs_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows cut by the size cap are named by their table, never by the last label drawn (a prompt's words)."""
    from types import SimpleNamespace

    from seqnb.images.fallback import STATIC_MAX_ENV, matrix_view_html
    from seqnb.images.matrix import build_matrix
    from seqnb.runs.run import RunCore

    prompts = [f"<img src=x onerror=alert('{n}')> Generate 2 images of a fox" for n in (1, 2)]
    runs = [RunCore(seqnb.Request("seedream-4.5", prompt, count=2, seed=s)) for s in (1, 2, 3) for prompt in prompts]
    view = SimpleNamespace(
        matrix=build_matrix(runs, rows="seed", cols=None), marks={}, thumb=64, static_frames=lambda run: None
    )
    monkeypatch.setenv(STATIC_MAX_ENV, "300B")
    page = matrix_view_html(view)
    assert "left out to keep this copy under" in page and re.search(r"rows [23]-3 of the table \(\d series\)", page)
    no_live_markup(page)
