"""A hostile team ledger opened in the matrix, in a real JupyterLab (headless Debian chromium): nothing runs.

Runs are made on a fast emulator, then their rows are rewritten as any member of a team ledger
could: two run ids and a prompt carry markup that would run script if it reached the page as
markup. The matrix of the runs restored from that ledger is drawn, every frame hovered, and each
hostile run opened in the lightbox by a click: ``document.title`` never changes, no element of the
payloads exists, and the ids come back from the page exactly as written (the clicks open the right run).
Reuses the JupyterLab fixture and helpers of ``test_browser``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tests.system.test_browser import CHROMIUM, FLAGS, lab, no_tracebacks, open_and_run_all

__all__ = ["lab"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOVER_ID = 'x" onmouseover="document.title=\'PWNED\'" y'
BREAKOUT_ID = '"><img src=x onerror="document.title=\'PWNED2\'">'
PROMPT = "Generate 2 images of a fox <img src=x onerror=document.title='PWNED3'>"
PAYLOAD = "[onmouseover], [onerror], img[src='x']"


def hostile_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import sqlite3\n"
            "import seqnb\n"
            "from seqnb.emulator import serve\n\n"
            "emu = serve(queue_wait=0, base_seconds=0.05, seconds_per_image=0.02, workers=8)\n"
            "client = seqnb.connect(emu.token, emu.base_url, ledger='ledger.sqlite', download=seqnb.ImageCache('cache'))\n"
            f"sweep = client.sweep(prompts=[{PROMPT!r}, 'Generate 2 images of a kite'], seeds=[1, 2], quiet=True)\n"
            "await client.aio.wait_all([r.aio for r in sweep])\n"
            "await client.gallery.settle()\n"
            "client.ledger.flush()\n"
            "with sqlite3.connect('ledger.sqlite') as db:  # what a teammate's hand can write\n"
            f"    for old, new in [(sweep[0].id, {HOVER_ID!r}), (sweep[3].id, {BREAKOUT_ID!r})]:\n"
            "        db.execute('UPDATE runs SET id=? WHERE id=?', (new, old))\n"
            "        db.execute('UPDATE images SET run_id=? WHERE run_id=?', (new, old))\n"
            "restored = [client.ledger.restore(i) for i in client.ledger.runs(sweep=sweep.id)['id']]\n"
            "print('LEDGER REWRITTEN', len(restored))"
        ),
        nbformat.v4.new_code_cell(
            'view = seqnb.matrix(restored, rows="prompt", cols="seed", gallery=client.gallery, ledger=client.ledger)\n'
            "view"
        ),
    ]
    return nb


def test_a_hostile_ledger_row_renders_inert_in_the_matrix_and_its_lightbox(
    lab: tuple[str, str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    nbformat.write(hostile_notebook(), root / "hostile.ipynb")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        page.set_default_timeout(60_000)
        open_and_run_all(page, base, token, "hostile.ipynb")
        try:
            page.wait_for_function("document.body.innerText.includes('LEDGER REWRITTEN 4')", timeout=180_000)
            page.wait_for_function(
                "document.querySelectorAll(\".seqnb-matrix .seqnb-m-frame img[src^='data:']\").length === 8 && [...document"
                ".querySelectorAll(\".seqnb-matrix .seqnb-m-frame img[src^='data:']\")].every(i => i.naturalWidth > 0)",
                timeout=120_000,
            )
        except Exception:
            page.screenshot(path=str(tmp_path / "hostile-failed.png"))
            raise
        page.wait_for_timeout(300)  # any payload that could run on drawing has had its chance
        assert "PWNED" not in page.title()
        ids = page.eval_on_selector_all(".seqnb-matrix .seqnb-m-run", "els => els.map(e => e.dataset.run)")
        assert HOVER_ID in ids and BREAKOUT_ID in ids  # the ids as written, read back from the attributes
        frames = page.locator(".seqnb-matrix .seqnb-m-frame")
        for i in range(frames.count()):
            frames.nth(i).hover()
        page.locator(".seqnb-matrix .seqnb-m-row").first.hover()
        for hostile in (HOVER_ID, BREAKOUT_ID):
            index = ids.index(hostile)
            page.locator(".seqnb-matrix .seqnb-m-run").nth(index).locator(".seqnb-m-frame").first.click()
            page.wait_for_selector(".seqnb-m-lightbox:not([hidden])")
            page.wait_for_function(
                "id => document.querySelector('.seqnb-m-lb-info code')?.textContent === id", arg=hostile
            )  # the click carried the id exactly: the kernel opened that run
            page.locator(".seqnb-m-lb-prompt").hover()
            page.keyboard.press("Escape")
            page.wait_for_selector(".seqnb-m-lightbox", state="hidden")
        page.wait_for_timeout(500)  # any handler the payloads could have planted has had its chance
        assert "PWNED" not in page.title()
        assert page.locator(f".seqnb-matrix :is({PAYLOAD}), .seqnb-m-lightbox :is({PAYLOAD})").count() == 0
        rows = page.eval_on_selector_all(".seqnb-matrix .seqnb-m-row", "els => els.map(e => e.title)")
        assert PROMPT in rows  # the prompt shown as text
        no_tracebacks(page)
        browser.close()
