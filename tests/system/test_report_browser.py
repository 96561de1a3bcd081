"""A report opened from file:// in Debian's chromium with every request beyond file:// blocked: it all works offline."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import seqnb

from .test_browser import CHROMIUM, FLAGS, _missing

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTILE_NOTE = '"><img src=x onerror=alert(1)></script><script>alert(2)</script>'
LOADED = "[...document.images].filter(i => i.getAttribute('src'))"


def offline_page(browser: Any, attempts: list[str]) -> Any:
    """A page that lets only file: and data: load, recording every other request it would have made."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.set_default_timeout(30_000)

    def route(r: Any) -> None:
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            attempts.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    return page


def settled(page: Any, expression: str, timeout: float = 30) -> None:
    """Wait until ``expression`` is true in the page (polled from here: the page's CSP forbids the eval of wait_for_function)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout} s: {expression}"
        page.wait_for_timeout(50)


def column(page: Any, selector: str) -> list[str]:
    texts: list[str] = page.eval_on_selector_all(selector, "els => els.map(e => e.textContent)")
    return texts


def test_a_report_opens_from_file_with_the_network_off(seqnb_client: seqnb.Client, tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    runs = seqnb_client.sweep(
        prompts=["Generate 2 images of a heron", "Generate 2 images of a crane"], seeds=[1, 2], quiet=True
    )
    seqnb_client.wait_all(runs, timeout=30)
    seqnb_client.settle()
    assert seqnb_client.ledger is not None
    seqnb_client.ledger.annotate(runs[0].id, note=HOSTILE_NOTE)
    report = seqnb_client.report(seqnb_client.ledger.runs(), tmp_path / "report.html", full="beside")

    attempts: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        probe = offline_page(browser, attempts)  # the blocking records what it blocks: else this test proves nothing
        probe.set_content("<img src='http://198.51.100.7/x.png'>")
        probe.wait_for_timeout(300)
        assert attempts == ["http://198.51.100.7/x.png"]
        attempts.clear()

        page = offline_page(browser, attempts)
        dialogs: list[str] = []
        errors: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(report.as_uri())
        settled(page, f"{LOADED}.length >= 16 && {LOADED}.every(i => i.complete)")
        widths = page.evaluate(f"{LOADED}.map(i => i.naturalWidth)")
        assert len(widths) == 16 and all(w > 0 for w in widths)  # 4 runs x 2 frames, in the matrix and the series

        # The matrix: prompt across, seed down; swap them, then choose another axis.
        assert page.get_attribute("#seqnb-matrix", "data-x") == "prompt"
        across, down = column(page, "#seqnb-matrix th.x-head"), column(page, "#seqnb-matrix th.y-head")
        assert across == ["…heron", "…crane"] and down == ["seed 1", "seed 2"]  # labels name what differs
        titles = page.eval_on_selector_all("#seqnb-matrix th.x-head", "els => els.map(e => e.title)")
        assert titles == ["Generate 2 images of a heron", "Generate 2 images of a crane"]
        page.click("#swap")
        assert page.get_attribute("#seqnb-matrix", "data-x") == "seed"
        assert column(page, "#seqnb-matrix th.x-head") == down and column(page, "#seqnb-matrix th.y-head") == across
        assert page.input_value("#axis-x") == "seed" and page.input_value("#axis-y") == "prompt"
        assert page.locator("#seqnb-matrix td .cell-run").count() == 4

        # The table sorts by a column, both ways.
        page.click("#seqnb-runs th[data-key='seed']")
        seeds = column(page, "#seqnb-runs tbody tr td:nth-child(7)")
        assert seeds == ["1", "1", "2", "2"]
        page.click("#seqnb-runs th[data-key='seed']")
        assert column(page, "#seqnb-runs tbody tr td:nth-child(7)") == ["2", "2", "1", "1"]

        # A frame opens full-size from the folder beside the file.
        page.locator(f"#run-{runs[1].id} img.frame").nth(1).click()
        settled(page, "document.querySelector('#viewer img').complete")
        with Image.open(tmp_path / "report_files" / f"{runs[1].id}-02of02.png") as full:
            assert page.evaluate("document.querySelector('#viewer img').naturalWidth") == full.width > 256

        # The hostile note is text: shown as written, no element made from it, no script run.
        assert HOSTILE_NOTE in page.inner_text(f"#run-{runs[0].id}")
        assert page.locator("#seqnb-report script, img[src='x']").count() == 0
        assert dialogs == [] and errors == [] and attempts == []
        browser.close()
