"""One session in the kernel, in a real JupyterLab (headless Debian chromium), as the README starts one (issue #30).

``seqnb.connect()``, a sweep, then ``seqnb.Studio()`` in a later cell: the Runs tab shows the sweep's runs as
completed, each row named by its prompt's differing word. Then a 24-run sweep as a person would send one, the
screenshots of the Runs tab and of Gallery's Recent (docs/ with SEQNB_UPDATE_SCREENSHOTS=1), a kernel restart
(the old board says it is dead when clicked) and a new ``seqnb.Studio()`` that fills from the ledger.

Reuses the JupyterLab fixture and helpers of ``test_browser``.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from PIL import Image

from tests.system.test_browser import CHROMIUM, FLAGS, TAB, keep, lab, no_tracebacks, open_and_run_all

__all__ = ["lab"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

KEEPER = "Generate 3 images of a lighthouse keeper's day on a stormy northern island, from dawn to dusk, in "
STYLES = ("watercolour", "ink", "oil paint")


def session_notebook() -> nbformat.NotebookNode:
    """The README's way in, then a person's second sweep once the test says so, then a Studio after a restart."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    grid = 'models=["seedream-4.0", "seedream-4.5"]'
    nb.cells = [
        nbformat.v4.new_code_cell("import seqnb\n\nclient = seqnb.connect()"),
        nbformat.v4.new_code_cell(
            "import json\n"
            f"keeper = {KEEPER!r}\n"
            f"sweep = client.sweep(prompts=[keeper + s for s in {STYLES!r}], seeds=[1, 2], {grid})\n"
            "await client.aio.wait_all([r.aio for r in sweep])\n"
            "print('STYLES', json.dumps({r.id: r.request.prompt.rsplit(' in ', 1)[1] for r in sweep}))\n"
            "print('FIRST', 'DONE', sum(r.status == 'completed' for r in sweep))"
        ),
        nbformat.v4.new_code_cell("seqnb.Studio()"),
        nbformat.v4.new_code_cell(  # sent when the test has checked the first sweep (a file it writes)
            "import asyncio, pathlib\n"
            "while not pathlib.Path('second-sweep').exists():\n"
            "    await asyncio.sleep(0.1)\n"
            f"more = client.sweep(prompts=[keeper + s for s in {STYLES!r}], seeds=[3, 4, 5, 6], {grid})\n"
            "await client.aio.wait_all([r.aio for r in more])\n"
            "await client.aio.settle()\n"
            "print('SECOND', 'DONE', sum(r.status == 'completed' for r in more))"
        ),
        nbformat.v4.new_code_cell(  # run again by the test after the kernel restarts
            "import pathlib\n"
            "import seqnb\n\n"
            "seqnb.Studio() if pathlib.Path('restarted').exists() else print('NOT', 'YET')"
        ),
    ]
    return nb


def shot(page: Any, element: Any, path: Path, height: int = 900, width: int = 1100) -> None:
    """A small PNG of the top ``height`` pixels of one element: at most ``width`` wide, in a 256-colour palette (what
    docs/ keeps)."""
    element.evaluate("e => e.scrollIntoView({block: 'start'})")
    box = element.bounding_box()
    clip = {"x": box["x"], "y": box["y"], "width": box["width"], "height": min(box["height"], height)}
    picture = Image.open(io.BytesIO(page.screenshot(clip=clip)))
    if picture.width > width:
        picture = picture.resize((width, round(picture.height * width / picture.width)), Image.Resampling.LANCZOS)
    picture.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def test_connect_a_sweep_then_a_studio_in_a_later_cell_shows_the_runs_by_their_differing_words(
    lab: tuple[str, str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    nbformat.write(session_notebook(), root / "session.ipynb")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        page.set_default_timeout(60_000)
        open_and_run_all(page, base, token, "session.ipynb")
        try:
            page.wait_for_function("document.body.innerText.includes('FIRST DONE 12')", timeout=240_000)
            studio = page.locator(".jp-OutputArea-output", has=page.locator(".seqnb-board")).first
            studio.locator(TAB, has_text="Runs").first.click()
            page.wait_for_function(
                "[...document.querySelectorAll('.seqnb-summary')].some(e => e.textContent === '12 runs: 12 completed')",
                timeout=60_000,
            )
        except Exception:
            page.screenshot(path=str(tmp_path / "session-failed.png"))
            raise
        found = re.search(r"STYLES (\{.*\})", page.inner_text(".jp-Notebook"))
        assert found is not None
        styles: dict[str, str] = json.loads(found.group(1))
        rows = page.locator(".seqnb-board .seqnb-run")
        assert rows.count() == 12
        for i in range(12):
            row = rows.nth(i)
            run_id = row.get_attribute("data-run")
            assert run_id in styles
            text = row.inner_text()
            assert styles[run_id] in text, text  # the differing word is visible, not cut off
            assert "completed" in text and "seedream-4." in text and "seed " in text
            title = row.locator(".seqnb-label").get_attribute("title") or ""
            assert title == KEEPER + styles[run_id]  # the whole prompt on hover

        # A person's sweep: 3 prompts x 4 seeds x 2 models, sent from code while the Studio is open.
        (root / "second-sweep").write_text("go")
        page.wait_for_function("document.body.innerText.includes('SECOND DONE 24')", timeout=240_000)
        page.wait_for_function(
            "[...document.querySelectorAll('.seqnb-summary')].some(e => e.textContent === '36 runs: 36 completed')",
            timeout=60_000,
        )
        shot(page, studio, tmp_path / "studio-runs.png")
        studio.locator(TAB, has_text="Gallery").first.click()
        page.wait_for_function(
            "[...document.querySelectorAll('.widget-html')].some(e => e.textContent.includes('36 completed runs')"
            " && !e.textContent.includes('downloading'))",
            timeout=60_000,
        )
        page.wait_for_function(
            "[...document.querySelectorAll('.jupyter-widgets img')].filter(i => i.naturalWidth > 0"
            " && i.offsetParent !== null).length >= 12",
            timeout=60_000,
        )
        recent = studio.inner_text()
        captions = [line for line in recent.splitlines() if "seed " in line and "seedream-4." in line]
        assert len(captions) >= 4 and all(any(s in c for s in STYLES) for c in captions[:4]), recent
        shot(page, studio, tmp_path / "studio-gallery.png")
        no_tracebacks(page)

        # The kernel restarts: the old board says so when clicked; a new Studio fills from the ledger.
        page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel…").first.click()
        page.locator(".jp-Dialog .jp-mod-accept").click()
        page.wait_for_function("document.body.innerText.includes('(ipykernel) | Idle')", timeout=120_000)
        studio.locator(TAB, has_text="Runs").first.click()
        page.wait_for_selector(".jupyter-widgets-disconnected .seqnb-board, .seqnb-board.jupyter-widgets-disconnected")
        studio.locator(".seqnb-board .seqnb-next").click()
        page.wait_for_function("document.querySelector('.seqnb-board .seqnb-message').textContent.includes('gone')")
        assert "Run the cell again" in studio.locator(".seqnb-board .seqnb-message").inner_text()

        (root / "restarted").write_text("yes")
        last = page.locator(".jp-Notebook .jp-CodeCell").nth(4)
        last.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        page.wait_for_function("document.querySelectorAll('.seqnb-board').length === 2", timeout=120_000)
        after = page.locator(".jp-OutputArea-output", has=page.locator(".seqnb-board")).nth(1)
        after.locator(TAB, has_text="Runs").first.click()
        page.wait_for_function(
            "[...document.querySelectorAll('.seqnb-summary')].filter(e => e.textContent === '36 runs: 36 completed')"
            ".length === 2",
            timeout=60_000,
        )
        first_row = after.locator(".seqnb-run").first.inner_text()
        assert "read back from the ledger" in first_row and any(s in first_row for s in STYLES)
        no_tracebacks(page)
        browser.close()
    for name in ("studio-runs.png", "studio-gallery.png"):
        assert 20_000 < (tmp_path / name).stat().st_size < 300_000
        keep(tmp_path / name)
