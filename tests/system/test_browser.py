"""A real browser: JupyterLab serves the quickstart, headless Chromium runs all cells, the page is checked.

Needs Debian's chromium (.ci/run installs it) and the playwright package (test extras), which
drives that browser; playwright never downloads a browser of its own here. Screenshots go to
pytest's temporary directory; with SEQNB_UPDATE_SCREENSHOTS=1 they are copied to docs/.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {missing}")
        pytest.skip(missing)
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", root / "quickstart.ipynb")
    nbformat.write(sweep_notebook(), root / "sweep.ipynb")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k not in ("RUNCOMFY_TOKEN", "RUNCOMFY_BASE_URL")}
    env["RUNCOMFY_CONFIG_DIR"] = str(tmp_path / "no-login")
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--ServerApp.token={token}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--LabApp.news_url=",
            f"--ServerApp.root_dir={root}",
            "--allow-root",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/api/status", params={"token": token}).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "lab.log").read_text()[-2000:]
            time.sleep(0.3)
        yield base, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


SWEEP_RUNS = 300
TAB = ".lm-TabBar-tabLabel, .jupyter-widgets .lm-TabBar-tab"
SHOWN_IMAGES = (
    "[...document.querySelectorAll('img')].filter(i => i.naturalWidth > 0 && i.offsetParent !== null"
    " && i.closest('.jupyter-widgets'))"
)


def sweep_notebook() -> nbformat.NotebookNode:
    """The Studio open on a fast emulator, then a sweep of one-image runs sent from code."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import time\n"
            "import seqnb\n"
            "from seqnb.emulator import serve\n\n"
            "emu = serve(queue_wait=0, base_seconds=0.02, seconds_per_image=0.02, workers=32)\n"
            "client = seqnb.connect(emu.token, emu.base_url, ledger='ledger.sqlite', download=seqnb.ImageCache('cache'))\n"
            "studio = seqnb.Studio(client)\n"
            "studio"
        ),
        nbformat.v4.new_code_cell(
            f"sweep = client.sweep(prompts=['Generate 1 image of a lighthouse'], seeds=range({SWEEP_RUNS}), quiet=True)\n"
            "studio.show_tab('Runs')"
        ),
        nbformat.v4.new_code_cell(
            "await client.aio.wait_all([r.aio for r in sweep])\n"
            "print(f'KERNEL DONE {time.time():.3f}')\n"
            "await client.gallery.settle()\n"
            "print('IMAGES IN', sum(r.status == 'completed' for r in sweep))"
        ),
        nbformat.v4.new_code_cell(  # the board used while a cell awaits: every click must still reach the kernel
            "import asyncio\n"
            "pages = []\n"
            "studio.board.observe(lambda change: pages.append(change['new']), 'page')\n"
            "print('WAITING', 'FOR PAGES')\n"  # (the marker is not in the source the page also shows)
            "while pages[-2:] != [1, 0]:\n"
            "    await asyncio.sleep(0.05)\n"
            "print('PAGED WHILE BUSY', pages)"
        ),
    ]
    return nb


def open_and_run_all(page: Any, base: str, token: str, notebook: str) -> None:
    # Each notebook in its own workspace: otherwise JupyterLab restores the last layout and runs the wrong one.
    page.goto(f"{base}/lab/workspaces/{notebook.split('.')[0]}/tree/{notebook}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", state="visible")
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    if dialog.count():
        dialog.click()
    # Run All only once the kernel is connected and idle (before that it does nothing).
    page.wait_for_function("document.body.innerText.includes('(ipykernel) | Idle')", timeout=120_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.wait_for_function("document.body.innerText.includes('[1]:') || document.body.innerText.includes('[*]:')")
    news = page.locator(".jp-toast-button", has_text="No")  # JupyterLab's "notify me about news?" toast
    if news.count():
        news.first.click()


def keep(path: Path) -> None:
    """Copy a screenshot into docs/ when asked to (SEQNB_UPDATE_SCREENSHOTS=1); tests write nothing else there."""
    if os.environ.get("SEQNB_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(path, ROOT / "docs" / path.name)


def no_tracebacks(page: Any) -> None:
    errors = page.locator(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", has_text="Traceback"
    )
    assert errors.count() == 0, errors.first.inner_text()


def test_quickstart_in_jupyterlab_shows_completed_runs_and_their_images(
    lab: tuple[str, str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, token, _ = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        open_and_run_all(page, base, token, "quickstart.ipynb")
        try:
            page.wait_for_selector(".widget-html >> text=offline emulator at", timeout=120_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "studio-failed.png"))
            raise
        page.locator(TAB, has_text="Runs").first.click()
        page.wait_for_function(
            "[...document.querySelectorAll('.seqnb-summary')].some(e => e.textContent === '2 runs: 2 completed')",
            timeout=180_000,
        )
        assert "failed" not in page.inner_text(".seqnb-board .seqnb-runs")

        # The Gallery tab shows both series from the kernel's cache: real, decoded images.
        page.locator(TAB, has_text="Gallery").first.click()
        page.wait_for_function(f"{SHOWN_IMAGES}.length >= 6", timeout=120_000)
        shown = page.evaluate(f"{SHOWN_IMAGES}.map(i => i.src.slice(0, 5))")
        assert len(shown) >= 6 and all(src in ("blob:", "data:") for src in shown)  # local bytes, never a remote URL
        assert "1/3 · seed" in page.inner_text(".jp-Notebook")  # each frame captioned (a score only where it separates)
        # The outputs also carry a static HTML copy for saved notebooks; with the kernel live the widget wins.
        page.wait_for_function(f"{SHOWN_IMAGES}.length >= 9")  # the last cell's grid too
        assert page.locator(".jp-OutputArea-output.lm-Panel").count() == 2  # the Studio and the grid, as widgets
        assert page.locator(".jp-OutputArea-output[data-mime-type='text/html']").count() == 0
        no_tracebacks(page)
        browser.close()


def test_a_sweep_of_300_runs_in_jupyterlab_the_board_keeps_up_and_the_gallery_pages(
    lab: tuple[str, str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    base, token, _ = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(60_000)
        open_and_run_all(page, base, token, "sweep.ipynb")
        try:
            page.wait_for_selector(".seqnb-board .seqnb-summary", timeout=120_000)
            page.wait_for_function(
                "[...document.querySelectorAll('.seqnb-summary')].some(e => e.textContent.startsWith('300 runs'))",
                timeout=120_000,
            )
            # The board while the sweep runs: the sweep's aggregate bar, a page of runs with their clocks.
            page.screenshot(path=str(tmp_path / "studio-runs-live.png"))
            page.wait_for_function(
                "[...document.querySelectorAll('.seqnb-summary')].some(e => e.textContent === '300 runs: 300 completed')",
                timeout=300_000,
            )
            seen = time.time()
            page.wait_for_function(r"/KERNEL DONE \d/.test(document.body.innerText)", timeout=120_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "studio-failed.png"))
            raise
        found = re.search(r"KERNEL DONE (\d+\.\d+)", page.inner_text(".jp-Notebook"))
        assert found is not None
        kernel_done = float(found.group(1))
        assert seen - kernel_done < 10, f"the board said all completed {seen - kernel_done:.1f} s after the kernel"
        board = page.inner_text(".seqnb-board")
        assert "300 runs: 300 completed" in board and "page 1 of 15 · 300 runs" in board
        rows = page.locator(".seqnb-board .seqnb-run")
        assert rows.count() == 20  # one page, whatever the number of runs
        assert page.locator(".seqnb-board .seqnb-sweeps button", has_text="Cancel the rest").first.is_disabled()
        # Paged while the last cell awaits: ipykernel 7.4 answers these clicks during the cell, and each must
        # reach the kernel (seqnb.ui.kernel_comms), not only the first.
        page.wait_for_function("document.body.innerText.includes('WAITING FOR PAGES')", timeout=120_000)
        page.locator(".seqnb-board .seqnb-next").click()
        page.wait_for_function("document.querySelector('.seqnb-page').textContent.includes('page 2 of 15')")
        page.locator(".seqnb-board .seqnb-prev").click()
        page.wait_for_function("document.querySelector('.seqnb-page').textContent.includes('page 1 of 15')")
        page.wait_for_function("document.body.innerText.includes('PAGED WHILE BUSY [1, 0]')")
        page.locator(".seqnb-board").scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "studio-runs.png"))

        # The gallery shows a page of four series, and pages.
        page.wait_for_function("document.body.innerText.includes('IMAGES IN 300')", timeout=120_000)
        page.locator(TAB, has_text="Gallery").first.click()
        page.wait_for_function("document.body.innerText.includes('page 1 of 75 · 300 completed runs')", timeout=60_000)
        page.wait_for_function(f"{SHOWN_IMAGES}.length === 4", timeout=60_000)
        first = page.evaluate(f"{SHOWN_IMAGES}.map(i => i.src)")
        page.locator(".jupyter-widgets button", has_text="older").first.click()
        page.wait_for_function("document.body.innerText.includes('page 2 of 75 · 300 completed runs')", timeout=60_000)
        page.wait_for_function(
            f"(first) => {SHOWN_IMAGES}.filter(i => !first.includes(i.src)).length === 4", arg=first, timeout=60_000
        )
        second = page.evaluate(f"{SHOWN_IMAGES}.map(i => i.src)")
        assert len(second) == 4 and set(first).isdisjoint(second)
        assert page.locator(".jupyter-widgets img").count() <= 5  # the first page's images left (the viewer stays)
        page.locator(".widget-tab").first.scroll_into_view_if_needed()
        page.screenshot(path=str(tmp_path / "studio-gallery.png"))
        no_tracebacks(page)
        browser.close()
    for name in ("studio-runs.png", "studio-gallery.png"):  # docs/ shows a person's 24-run sweep instead
        assert (tmp_path / name).stat().st_size > 30_000  # (tests/system/test_session_browser.py keeps those)
