"""The matrix and its lightbox in a real JupyterLab (headless Debian chromium): a click, two keys, a mark in the ledger.

Reuses the JupyterLab fixture and helpers of ``test_browser``; screenshots go to pytest's temporary
directory, and to docs/ with SEQNB_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from seqnb.ledger.facade import Ledger
from tests.system.test_browser import CHROMIUM, FLAGS, keep, lab, no_tracebacks, open_and_run_all

__all__ = ["lab"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STYLE = "Generate 4 images of a lighthouse keeper's day, from dawn to night, one moment per image, in "


def matrix_notebook() -> nbformat.NotebookNode:
    """A sweep of 3 prompts x 4 seeds on a fast emulator, then its matrix with prompts as rows and seeds as columns."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import seqnb\n"
            "from seqnb.emulator import serve\n\n"
            "emu = serve(queue_wait=0, base_seconds=0.05, seconds_per_image=0.02, workers=12)\n"
            "client = seqnb.connect(emu.token, emu.base_url, ledger='ledger.sqlite', download=seqnb.ImageCache('cache'))\n"
            f"style = {STYLE!r}\n"
            "sweep = client.sweep(prompts=[style + s for s in ('ink drawing', 'watercolor', 'woodcut')],\n"
            "                     seeds=[1, 2, 3, 4], quiet=True)\n"
            "await client.aio.wait_all([r.aio for r in sweep])\n"
            "await client.gallery.settle()\n"
            "print('SWEEP DONE', sum(r.status == 'completed' for r in sweep))"
        ),
        nbformat.v4.new_code_cell('view = seqnb.matrix(sweep, rows="prompt", cols="seed")\nview'),
    ]
    return nb


def test_the_matrix_in_jupyterlab_a_click_arrow_right_and_5_rate_the_second_frame(
    lab: tuple[str, str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    nbformat.write(matrix_notebook(), root / "matrix.ipynb")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.set_default_timeout(60_000)
        open_and_run_all(page, base, token, "matrix.ipynb")
        try:
            page.wait_for_function("document.body.innerText.includes('SWEEP DONE 12')", timeout=180_000)
            page.wait_for_function(
                "document.querySelectorAll('.seqnb-matrix .seqnb-m-frame img').length === 48"
                " && [...document.querySelectorAll('.seqnb-matrix .seqnb-m-frame img')].every(i => i.naturalWidth > 0)",
                timeout=120_000,
            )
        except Exception:
            page.screenshot(path=str(tmp_path / "matrix-failed.png"))
            raise
        rows = page.eval_on_selector_all(".seqnb-matrix .seqnb-m-row", "els => els.map(e => e.textContent)")
        cols = page.eval_on_selector_all(".seqnb-matrix .seqnb-m-col", "els => els.map(e => e.textContent)")
        assert rows == ["…ink drawing", "…watercolor", "…woodcut"]
        assert cols == ["seed 1", "seed 2", "seed 3", "seed 4"]
        assert page.get_attribute(".seqnb-matrix .seqnb-m-row >> nth=1", "title") == STYLE + "watercolor"
        first = page.locator(".seqnb-matrix .seqnb-m-frame[data-frame='0']").first
        run_id = first.get_attribute("data-run")
        first.click()
        page.wait_for_selector(".seqnb-m-lightbox:not([hidden]) img.seqnb-m-large[src^='blob:']")
        page.wait_for_function(
            "document.querySelector('.seqnb-m-lightbox img.seqnb-m-large').naturalWidth > 300"
        )  # the large image, sent on demand
        page.keyboard.press("ArrowRight")
        page.wait_for_function("document.querySelector('.seqnb-m-lb-title').textContent.includes('frame 2 of 4')")
        page.wait_for_selector(".seqnb-m-lightbox img.seqnb-m-large[src^='blob:']")
        page.keyboard.press("5")
        page.wait_for_function("document.querySelectorAll('.seqnb-m-lb-rate button.seqnb-m-on').length === 5")
        info = page.inner_text(".seqnb-m-lb-info")
        assert STYLE + "ink drawing" in info and "seedream-4.5" in info and run_id in info and "USD" in info
        page.wait_for_timeout(300)  # the large image drawn
        page.screenshot(path=str(tmp_path / "lightbox.png"))
        page.keyboard.press("p")  # picked: the cell says so, and Promote offers itself
        page.wait_for_function("document.querySelector('.seqnb-m-verdict').textContent.includes('picked')")
        page.keyboard.press("Escape")
        page.wait_for_selector(".seqnb-m-lightbox", state="hidden")
        star = page.locator(f".seqnb-matrix .seqnb-m-frame[data-run='{run_id}'][data-frame='1'] .seqnb-m-fstar")
        assert star.inner_text() == "★★★★★"  # the cell shows the frame's rating
        assert page.locator(f".seqnb-matrix .seqnb-m-run.seqnb-m-v-picked[data-run='{run_id}']").count() == 1
        assert "1 picked" in page.inner_text(".seqnb-matrix .seqnb-m-bar")
        matrix = page.locator(".seqnb-matrix")
        matrix.scroll_into_view_if_needed()
        matrix.screenshot(path=str(tmp_path / "matrix.png"))
        # the keys were the lightbox's: JupyterLab did not take "5" for "make this cell a heading", nor "p" or "x"
        assert page.locator(".jp-Notebook .jp-MarkdownCell").count() == 0
        assert page.locator(".jp-Notebook .jp-CodeCell").count() == 2
        no_tracebacks(page)
        browser.close()

    ledger = Ledger(root / "ledger.sqlite")
    try:
        marks = ledger.marks_of([run_id])[run_id]
        assert marks.frame_ratings == {1: 5} and marks.verdict == "picked"
        (row,) = ledger.runs(ids=[run_id]).itertuples()
        assert row.prompt == STYLE + "ink drawing"
    finally:
        ledger.close()
    for name in ("matrix.png", "lightbox.png"):
        assert (tmp_path / name).stat().st_size > 20_000
        keep(tmp_path / name)
