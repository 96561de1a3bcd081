"""A real browser: JupyterLab serves the quickstart, headless Chromium runs all cells, the page is checked.

Needs Debian's chromium (.ci/run installs it) and the playwright package (test extras), which
drives that browser; playwright never downloads a browser of its own here.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
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
def lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run in CI: {missing}")
        pytest.skip(missing)
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", root / "quickstart.ipynb")
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
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_quickstart_in_jupyterlab_shows_completed_runs_and_their_images(lab: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    base, token = lab
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(f"{base}/lab/tree/quickstart.ipynb?token={token}")
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

        # The Studio rendered, says it is offline, and its job board shows both runs completed.
        try:
            page.wait_for_selector(".widget-html >> text=offline emulator at", timeout=120_000)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "studio-failed.png"))
            raise
        page.locator(".lm-TabBar-tabLabel, .jupyter-widgets .lm-TabBar-tab", has_text="Runs").first.click()
        page.wait_for_function("document.body.innerText.includes('2 runs: 2 completed')", timeout=180_000)
        board_text = page.inner_text(".jp-Notebook")
        assert "2 runs: 2 completed" in board_text and "failed" not in board_text
        page.screenshot(path=str(ARTIFACTS / "studio-runs.png"))

        # The Gallery tab shows both series from the kernel's cache: real, decoded images.
        page.locator(".lm-TabBar-tabLabel, .jupyter-widgets .lm-TabBar-tab", has_text="Gallery").first.click()
        page.wait_for_function(
            "[...document.querySelectorAll('img')].filter(i => i.naturalWidth > 0 && i.offsetParent !== null"
            " && i.closest('.jupyter-widgets')).length >= 6",
            timeout=120_000,
        )
        shown = page.evaluate(
            "[...document.querySelectorAll('img')].filter(i => i.naturalWidth > 0 && i.offsetParent !== null"
            " && i.closest('.jupyter-widgets')).map(i => i.src.slice(0, 5))"
        )
        assert len(shown) >= 6 and all(src in ("blob:", "data:") for src in shown)  # local bytes, never a remote URL
        assert "consistency" in page.inner_text(".jp-Notebook")
        errors = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", has_text="Traceback"
        )
        assert errors.count() == 0
        page.locator(".widget-tab").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "studio-gallery.png"))
        browser.close()
    assert (ARTIFACTS / "studio-gallery.png").stat().st_size > 50_000
