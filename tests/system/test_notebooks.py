"""The notebooks in notebooks/ run top to bottom, offline, in a real kernel (nbclient)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.notebook_cells import run_offline

ROOT = Path(__file__).parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_notebooks_are_there_and_carry_no_outputs() -> None:
    assert {p.stem for p in NOTEBOOKS} >= {"quickstart", "sweep_and_compare", "ledger_analysis"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
            f"{path.name} has outputs committed"
        )
        assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNCOMFY_TOKEN", raising=False)
    monkeypatch.delenv("RUNCOMFY_BASE_URL", raising=False)
    monkeypatch.setenv("RUNCOMFY_CONFIG_DIR", str(tmp_path / "no-login"))
    work = tmp_path / path.name
    shutil.copy(path, work)
    nb = nbformat.read(work, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    if path.stem == "quickstart":
        last = nb.cells[-2].outputs[0]["data"]["text/plain"]
        assert last.count("'completed', 3") == 2
        grid = nb.cells[-1].outputs[0]["data"]
        assert grid["text/html"].count('src="data:image/jpeg;base64,') == 3  # the saved notebook keeps the images
        studio = next(c for c in nb.cells if c.cell_type == "code").outputs[0]["data"]
        assert "seqnb Studio" in studio["text/html"] and studio["text/plain"].startswith("<seqnb.Studio")
    if path.stem == "sweep_and_compare":
        assert (tmp_path / "seqnb-output" / "boat-contact-sheet.png").exists()
    if path.stem == "ledger_analysis":
        assert (tmp_path / "seqnb-output" / "runs.csv").exists()
        assert sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])) == 2
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p != work and "no-login" not in p.parts]
    assert any(p.name == f"{path.stem}-ledger.sqlite" for p in written)  # its own ledger, apart from the others'
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        input="\n".join(str(p.relative_to(tmp_path)) for p in written),
        capture_output=True,
        text=True,
        cwd=ROOT if (ROOT / ".git").exists() else _repository_of_the_gitignore(tmp_path / "ignore-check"),
        check=False,
    ).stdout.split()
    assert sorted(ignored) == sorted(
        str(p.relative_to(tmp_path)) for p in written
    )  # run in the repo: no untracked files


def _repository_of_the_gitignore(folder: Path) -> Path:
    """Outside a git checkout (an unpacked sdist), an empty repository holding only the .gitignore, for git's check."""
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    shutil.copy(ROOT / ".gitignore", folder / ".gitignore")
    return folder


SAVED_SESSION = [
    "import seqnb\n\n"
    "client = seqnb.connect(ledger='saved-ledger.sqlite')\n"
    "runs = client.sweep(prompts=['Generate 3 images of a lighthouse'], seeds=[1, 2], models=['seedream-4.0'], "
    "budget='1.00', quiet=True)\n"
    "client.wait_all(runs, timeout=120)\n"
    "client.settle()",
    "seqnb.compare_grid(runs)",
    "runs[0].grid(size=128)",
]


@pytest.mark.slow
def test_a_saved_notebook_shows_the_grids_without_a_kernel_or_widget_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Executed as a user would, then converted as GitHub or nbviewer would see it: every frame is in the HTML."""
    import base64
    import io
    import re

    from nbconvert import HTMLExporter
    from PIL import Image

    nb = run_offline(SAVED_SESSION, tmp_path, monkeypatch, store_widget_state=False)
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert "widgets" not in nb.metadata  # as a notebook saved without its widget state
    for cell in nb.cells[1:]:
        (output,) = cell.outputs
        assert {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"} <= set(output["data"])
    saved = nbformat.writes(nb)
    assert "file:" not in saved and str(tmp_path) not in saved and len(saved) < 2 * 2 * 1024 * 1024
    page, _ = HTMLExporter().from_notebook_node(nb)
    sizes = [
        Image.open(io.BytesIO(base64.b64decode(data))).size
        for data in re.findall(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', page)
    ]
    assert sizes == [(192, 108)] * 6 + [(128, 72)] * 3  # the compare grid's six frames, then the run's three
    assert page.count("<b>seed 1") == 2 and page.count("<b>seed 2") == 1 and "3/3 · seed 1" in page  # labels too
