"""The notebooks in notebooks/ run top to bottom, offline, in a real kernel (nbclient)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

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
        cwd=ROOT,
        check=False,
    ).stdout.split()
    assert sorted(ignored) == sorted(
        str(p.relative_to(tmp_path)) for p in written
    )  # run in the repo: no untracked files
