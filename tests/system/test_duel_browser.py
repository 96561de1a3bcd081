"""A duel in a real JupyterLab (headless Debian chromium): opened after a small sweep, blind on the page, three
choices made by key, the ledger holds them.

Reuses the JupyterLab fixture and helpers of ``test_browser``; the screenshot goes to pytest's temporary
directory, and to docs/ with SEQNB_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from seqnb.ledger.facade import Ledger
from seqnb.ledger.sessions import user_here
from tests.system.test_browser import CHROMIUM, FLAGS, keep, lab, no_tracebacks, open_and_run_all

__all__ = ["lab"]  # the fixture, imported for pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STYLE = "Generate 2 images of a fox crossing a frozen river at dawn, in "
STYLES = ("ink drawing", "watercolor")


def duel_notebook() -> nbformat.NotebookNode:
    """A sweep of 2 prompts x 3 seeds on a fast emulator, then a blind duel of its series."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import seqnb\n"
            "from seqnb.emulator import serve\n\n"
            "emu = serve(queue_wait=0, base_seconds=0.05, seconds_per_image=0.02, workers=6)\n"
            "client = seqnb.connect(emu.token, emu.base_url, ledger='ledger.sqlite', download=seqnb.ImageCache('cache'))\n"
            f"sweep = client.sweep(prompts=[{STYLE!r} + s for s in {STYLES!r}], seeds=[1, 2, 3], quiet=True)\n"
            "await client.aio.wait_all([r.aio for r in sweep])\n"
            "await client.gallery.settle()\n"
            "print('SWEEP DONE', sum(r.status == 'completed' for r in sweep))"
        ),
        nbformat.v4.new_code_cell("d = seqnb.duel(sweep)\nd"),
    ]
    return nb


def test_a_duel_in_jupyterlab_three_choices_by_key_are_in_the_ledger(
    lab: tuple[str, str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, token, root = lab
    nbformat.write(duel_notebook(), root / "duel.ipynb")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        open_and_run_all(page, base, token, "duel.ipynb")
        images = ".seqnb-duel .seqnb-d-side img"
        try:
            page.wait_for_function("document.body.innerText.includes('SWEEP DONE 6')", timeout=180_000)
            page.wait_for_function(
                f"document.querySelectorAll('{images}').length === 4"
                f" && [...document.querySelectorAll('{images}')].every(i => i.naturalWidth > 0)",
                timeout=120_000,
            )
        except Exception:
            page.screenshot(path=str(tmp_path / "duel-failed.png"))
            raise
        widget = page.locator(".seqnb-duel")
        shown = widget.inner_html()
        assert not [word for word in (*STYLES, "seed", "seedream", "USD") if word in shown]  # blind on the page too
        widget.locator(".seqnb-d-progress").click()  # focus the duel: its keys are its own
        for n, name in enumerate(("ArrowLeft", "ArrowRight", "ArrowDown"), start=1):
            before = page.get_attribute(f"{images} >> nth=0", "src")
            page.keyboard.press(name)
            page.wait_for_function(
                f"document.querySelector('.seqnb-duel .seqnb-d-progress').textContent.startsWith('{n} choice(s)')"
            )
            page.wait_for_function(
                f"document.querySelector('{images}') && document.querySelector('{images}').src !== {before!r}"
            )  # the next pair is shown
        reveal = page.inner_text(".seqnb-duel .seqnb-d-reveal")
        assert "a tie" in reveal and "seedream-4.5" in reveal and any(s in reveal for s in STYLES)
        page.wait_for_timeout(300)
        widget.scroll_into_view_if_needed()
        widget.screenshot(path=str(tmp_path / "duel.png"))
        # the keys were the duel's: JupyterLab moved to no other cell and made none
        assert page.locator(".jp-Notebook .jp-CodeCell").count() == 2
        no_tracebacks(page)
        browser.close()

    ledger = Ledger(root / "ledger.sqlite")
    try:
        rows = ledger.duels()
        assert list(rows["outcome"]) == ["left", "right", "tie"]
        assert list(rows["blind"]) == [True, True, True] and set(rows["by"]) == {user_here()}
        assert ledger.ranking(list({*rows["left_id"], *rows["right_id"]}))["comparisons"].sum() == 6
    finally:
        ledger.close()
    assert (tmp_path / "duel.png").stat().st_size > 20_000
    keep(tmp_path / "duel.png")
