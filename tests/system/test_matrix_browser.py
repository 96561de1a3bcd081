"""The matrix, its lightbox and the report in a real JupyterLab (headless Debian chromium), as a person judging a
24-run sweep uses them: the keyboard from frame to frame and series to series, marks in the ledger, a promote
confirmed by its sum, and the report's viewer with the same keys.

Reuses the JupyterLab fixture and helpers of ``test_browser``; screenshots go to pytest's temporary
directory, and to docs/ with SEQNB_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from seqnb.images.share import report_ledger
from seqnb.ledger.facade import Ledger
from tests.system.test_browser import CHROMIUM, FLAGS, keep, lab, no_tracebacks, open_and_run_all

__all__ = ["lab"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STYLE = "Generate 4 images of a lighthouse keeper's day on a stormy northern island, from dawn to night, in "
STYLES = ("watercolour", "ink", "oil paint")
ACTIVE = (
    "(() => { const a = document.activeElement; return a && a.dataset ? [a.dataset.run, a.dataset.frame] : null; })()"
)


def matrix_notebook() -> nbformat.NotebookNode:
    """A sweep of 3 prompts x 4 seeds x 2 models on a fast emulator, a few marks made in code, then its matrix."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import seqnb\n"
            "from seqnb.emulator import serve\n\n"
            "emu = serve(queue_wait=0, base_seconds=0.05, seconds_per_image=0.02, workers=12)\n"
            "client = seqnb.connect(emu.token, emu.base_url, ledger='ledger.sqlite', download=seqnb.ImageCache('cache'))\n"
            f"style = {STYLE!r}\n"
            f"sweep = client.sweep(prompts=[style + s for s in {STYLES!r}], seeds=[1, 2, 3, 4],\n"
            "                     models=['seedream-4.0', 'seedream-4.5'], quiet=True)\n"
            "await client.aio.wait_all([r.aio for r in sweep])\n"
            "await client.gallery.settle()\n"
            "by = {('4.5' if '4-5' in r.model else '4.0', r.request.prompt.split(' in ')[-1], r.request.seed): r\n"
            "      for r in sweep}\n"
            "by['4.0', 'ink', 3].rate(4); by['4.0', 'ink', 3].rate(5, frame=1); by['4.0', 'ink', 3].pick()\n"
            "by['4.0', 'oil paint', 2].reject(); by['4.5', 'watercolour', 4].rate(3)\n"
            "print('SWEEP DONE', sum(r.status == 'completed' for r in sweep))"
        ),
        nbformat.v4.new_code_cell('view = seqnb.matrix(sweep, rows="prompt", cols="seed", facet="model")\nview'),
    ]
    return nb


def lightbox(page: Any) -> tuple[str, str, str]:
    """(run id, title, where) of what the lightbox shows."""
    run = page.inner_text(".seqnb-m-lb-facts code")
    return run, page.inner_text(".seqnb-m-lb-title"), page.inner_text(".seqnb-m-lb-where")


def wait_lightbox(page: Any, text: str) -> None:
    page.wait_for_function(
        "(t) => { const b = document.querySelector('.seqnb-m-lightbox'); return b && !b.hidden && b.innerText.includes(t); }",
        arg=text,
    )


def settled(page: Any, expression: str, timeout: float = 30) -> None:
    """Until ``expression`` is true in a page whose CSP forbids wait_for_function's eval (the report)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        page.wait_for_timeout(50)


def test_judging_a_24_run_sweep_with_the_keyboard_in_jupyterlab_then_its_report(
    lab: tuple[str, str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    nbformat.write(matrix_notebook(), root / "matrix.ipynb")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        open_and_run_all(page, base, token, "matrix.ipynb")
        page.locator(".lm-MenuBar-itemLabel", has_text="View").first.click()  # the file browser closed: room
        page.locator(".lm-Menu-itemLabel", has_text="Appearance").first.hover()
        page.locator(".lm-Menu-itemLabel", has_text="Show Left Sidebar").first.click()
        try:
            page.wait_for_function("document.body.innerText.includes('SWEEP DONE 24')", timeout=180_000)
            page.wait_for_function(
                "document.querySelectorAll('.seqnb-matrix .seqnb-m-frame img').length === 48"
                " && [...document.querySelectorAll('.seqnb-matrix .seqnb-m-frame img')].every(i => i.naturalWidth > 0)",
                timeout=120_000,
            )
        except Exception:
            page.screenshot(path=str(tmp_path / "matrix-failed.png"))
            raise
        rows = page.eval_on_selector_all(".seqnb-matrix .seqnb-m-row", "els => els.map(e => e.textContent)")
        assert rows == ["…watercolour", "…ink", "…oil paint"]
        assert page.get_attribute(".seqnb-matrix .seqnb-m-row >> nth=1", "title") == STYLE + "ink"
        facets = page.eval_on_selector_all(".seqnb-matrix .seqnb-m-facet", "els => els.map(e => e.textContent)")
        assert facets == ["seedream-4.0 1 ✔", "seedream-4.5"]  # each table's button says how many picks it holds
        shapes = page.eval_on_selector_all(
            ".seqnb-matrix .seqnb-m-frame img", "els => els.map(i => i.width / i.height)"
        )
        assert all(abs(s - 16 / 9) < 0.06 for s in shapes), (
            shapes
        )  # 4.0's 2560x1440 frames, 16:9 and not cropped to squares

        # From the last frame of the first series, the next-frame key reaches the first frame of the next series.
        first = page.locator(".seqnb-matrix .seqnb-m-frame[data-frame='3']").first
        first_run = first.get_attribute("data-run")
        first.click()
        wait_lightbox(page, "frame 4 of 4")
        assert lightbox(page)[2] == "seedream-4.0 · …watercolour · seed 1"
        page.wait_for_selector(".seqnb-m-lightbox img.seqnb-m-large[src^='blob:']")
        page.keyboard.press("ArrowRight")
        wait_lightbox(page, "seed 2")
        second_run, title, where = lightbox(page)
        assert title.startswith("frame 1 of 4") and where == "seedream-4.0 · …watercolour · seed 2"
        assert second_run != first_run
        page.keyboard.press("ArrowLeft")  # and back, to the last frame of the first series
        wait_lightbox(page, "frame 4 of 4")
        assert lightbox(page)[0] == first_run
        page.keyboard.press("ArrowDown")  # down the column: the next prompt, same seed and frame
        wait_lightbox(page, "…ink · seed 1")
        page.keyboard.press("f")  # the same place in the other model's table
        wait_lightbox(page, "seedream-4.5 · …ink · seed 1")
        assert page.inner_text(".seqnb-m-lb-facts").count("seedream-4.5") == 1
        page.keyboard.press("ArrowRight")  # seed 2 of 4.5's ink row, picked and rated from the keyboard
        wait_lightbox(page, "seedream-4.5 · …ink · seed 2")
        assert lightbox(page)[1].startswith("frame 1 of 4")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        wait_lightbox(page, "frame 3 of 4")
        page.keyboard.press("Shift+4")
        page.wait_for_function("document.querySelectorAll('.seqnb-m-lb-rate button.seqnb-m-on').length === 4")
        page.keyboard.press("5")
        page.wait_for_function("document.querySelectorAll('.seqnb-m-lb-rate button.seqnb-m-on').length === 9")
        page.keyboard.press("p")
        page.wait_for_function("document.querySelector('.seqnb-m-lb-title .seqnb-m-pick') !== null")
        picked_run = lightbox(page)[0]
        page.wait_for_timeout(300)  # the large image drawn
        page.screenshot(path=str(tmp_path / "lightbox.png"))

        # Esc closes and puts the focus on the frame shown, in the table it is in; Enter opens it again.
        page.keyboard.press("Escape")
        page.wait_for_selector(".seqnb-m-lightbox", state="hidden")
        page.wait_for_function(f"JSON.stringify({ACTIVE}) === JSON.stringify([{picked_run!r}, '2'])")
        assert page.locator(".seqnb-matrix .seqnb-m-facet.seqnb-m-on").inner_text() == "seedream-4.5 1 ✔"
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"  # a focus ring you can see
        page.keyboard.press("ArrowLeft")  # the focus moves from frame to frame in the page
        page.wait_for_function(f"JSON.stringify({ACTIVE}) === JSON.stringify([{picked_run!r}, '1'])")
        page.keyboard.press("Enter")  # opens the focused frame...
        wait_lightbox(page, "frame 2 of 4")
        assert lightbox(page)[0] == picked_run
        page.keyboard.press("Escape")  # ...and Esc returns the focus to the cell it was opened from
        page.wait_for_selector(".seqnb-m-lightbox", state="hidden")
        page.wait_for_function(f"JSON.stringify({ACTIVE}) === JSON.stringify([{picked_run!r}, '1'])")

        # Promote: two picks of two models; per-model choices; priced by a first click, sent by a second one.
        page.keyboard.press("f")  # back to 4.0's table, where the code above picked ink · seed 3
        page.wait_for_function(
            "document.querySelector('.seqnb-matrix .seqnb-m-facet.seqnb-m-on').textContent.startsWith('seedream-4.0')"
        )
        assert "2 picked" in page.inner_text(".seqnb-matrix .seqnb-m-bar")
        choice = "4K on seedream-4.5 · optimize standard on seedream-4.0"
        page.select_option(".seqnb-matrix .seqnb-m-promote-choice", choice)
        page.click(".seqnb-matrix .seqnb-m-promote")
        page.wait_for_selector(".seqnb-matrix .seqnb-m-confirm")
        confirm = page.inner_text(".seqnb-matrix .seqnb-m-confirm")
        assert confirm == "Confirm: promote 2 runs, USD 0.28"  # 4 images at 4.5's 0.04, 4 at 4.0's 0.03
        page.click(".seqnb-matrix .seqnb-m-confirm")
        page.wait_for_function(
            "document.querySelector('.seqnb-matrix > .seqnb-m-message').textContent.includes('promoted 2 picked series')"
        )
        page.wait_for_function(  # the promoted run under its original, badged, its images in
            "[...document.querySelectorAll('.seqnb-matrix .seqnb-m-child')].some(r =>"
            " r.innerText.includes('promoted') && r.querySelectorAll('img').length === 4"
            " && [...r.querySelectorAll('img')].every(i => i.naturalWidth > 0))",
            timeout=60_000,
        )
        assert page.locator(".seqnb-matrix .seqnb-m-offer").is_hidden()
        page.mouse.move(5, 5)
        matrix = page.locator(".seqnb-matrix")
        matrix.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        matrix.screenshot(path=str(tmp_path / "matrix.png"))
        # the keys were the matrix's: JupyterLab did not take "5" for "make this cell a heading", nor "p", "f" or Enter
        assert page.locator(".jp-Notebook .jp-MarkdownCell").count() == 0
        assert page.locator(".jp-Notebook .jp-CodeCell").count() == 2
        assert page.locator(".jp-Notebook .jp-mod-editMode").count() == 0
        no_tracebacks(page)

        monkeypatch.chdir(root)  # the kernel's folder: its ledger names its image cache from there
        ledger = Ledger(root / "ledger.sqlite")
        try:
            marks = ledger.marks_of([picked_run])[picked_run]
            assert marks.frame_ratings == {2: 5} and marks.rating == 4 and marks.verdict == "picked"
            assert len(ledger.children(picked_run)) == 1
            sweep_id = str(ledger.runs(ids=[picked_run])["sweep_id"].iloc[0])
            picks = ledger.runs(sweep=sweep_id, verdict="picked")["id"]
            shown = [*ledger.runs(sweep=sweep_id)["id"], *(c.id for p in picks for c in ledger.children(str(p)))]
            report = report_ledger(
                ledger, root / "report.html", ids=shown, title="A stormy island: 24 runs and a promote"
            )
        finally:
            ledger.close()

        # The report: model and seed in every cell, stars and verdicts, a table per model, the frame large, keys.
        view = browser.new_page(viewport={"width": 1500, "height": 1000})
        view.goto(report.as_uri())
        settled(view, "[...document.images].filter(i => i.closest('#seqnb-matrix')).every(i => i.complete)")
        heads = view.eval_on_selector_all("#seqnb-matrix .cell-head", "els => els.map(e => e.textContent)")
        assert len(heads) == 26 and all("seedream-4." in h and "seed " in h for h in heads)
        assert sum("⤴ promoted" in h for h in heads) == 2  # each under its original
        assert view.eval_on_selector_all(".facet-head", "els => els.map(e => e.textContent)") == [
            "model: seedream-4.0",
            "model: seedream-4.5",
        ]
        assert any("★★★★☆" in h and "✔ picked" in h for h in heads) and any("✘ rejected" in h for h in heads)
        picked = view.evaluate(
            "getComputedStyle(document.querySelector('#seqnb-matrix .verdict-picked')).backgroundColor"
        )
        rejected = view.evaluate(
            "getComputedStyle(document.querySelector('#seqnb-matrix .verdict-rejected')).backgroundColor"
        )
        assert picked != rejected
        cell_one = view.locator("#seqnb-matrix button.thumb").nth(3)  # the last frame of the first series
        cell_one.focus()
        view.keyboard.press("Enter")
        settled(view, "!document.getElementById('viewer').hidden")
        assert view.evaluate("document.querySelector('#viewer img').naturalWidth") > 256  # large, not the thumbnail
        said = "document.querySelector('#viewer .viewer-text').innerText.startsWith"
        assert view.inner_text("#viewer .viewer-text").startswith("4/4 · seedream-4.0 · seed 1 · …watercolour")
        view.keyboard.press("ArrowRight")  # prompts across, seeds down: the next series along the row
        settled(view, f"{said}('1/4 · seedream-4.0 · seed 1 · …ink')")
        view.keyboard.press("f")
        settled(view, f"{said}('1/4 · seedream-4.5 · seed 1 · …ink')")
        view.keyboard.press("ArrowLeft")
        settled(view, f"{said}('4/4 · seedream-4.5 · seed 1 · …watercolour')")
        view.wait_for_timeout(200)
        view.screenshot(path=str(tmp_path / "report-viewer.png"))
        view.keyboard.press("Escape")
        settled(view, "document.getElementById('viewer').hidden")
        focused = view.evaluate("document.activeElement.dataset.frameKey")
        assert focused.endswith(":3") and view.evaluate("document.activeElement.closest('#seqnb-matrix') !== null")
        view.keyboard.press("ArrowRight")  # the page is the viewer's no more: a key does nothing there
        view.locator("#matrix").scroll_into_view_if_needed()
        view.evaluate("window.scrollTo(0, document.getElementById('matrix').offsetTop - 10)")
        view.wait_for_timeout(200)
        view.screenshot(path=str(tmp_path / "report.png"))
        browser.close()

    for name in ("matrix.png", "lightbox.png", "report.png"):
        assert (tmp_path / name).stat().st_size > 20_000
        keep(tmp_path / name)
