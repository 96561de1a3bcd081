"""Binder's environment, rebuilt with pip in a fresh virtual environment, runs the quickstart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).parents[2]


def names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[<>=\[; ]", r.strip(), maxsplit=1)[0].lower()
        for r in requirements
        if r.strip() and not r.startswith("#")
    }


def repo2docker_python() -> str:
    """The Python version repo2docker would build this repository's Binder image with (no Docker needed)."""
    repo2docker = shutil.which("repo2docker") or str(Path(sys.executable).parent / "repo2docker")
    done = subprocess.run(
        [repo2docker, "--no-build", "--debug", str(ROOT)], capture_output=True, text=True, timeout=120, check=False
    )
    found = re.search(r"python=(\d+\.\d+)", done.stdout + done.stderr)
    assert found, f"repo2docker did not say which Python it uses:\n{(done.stdout + done.stderr)[-2000:]}"
    return found.group(1)


def test_binder_builds_with_a_python_seqnb_supports() -> None:
    version = repo2docker_python()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(version), f"repo2docker picks Python {version}, seqnb needs {requires}"


def test_binder_requirements_cover_the_package_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    binder = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert names(project["dependencies"]) <= names(binder)
    assert {"jupyterlab", "ipykernel", "matplotlib"} <= names(binder)
    assert names(project["optional-dependencies"]["notebooks"]) <= names(binder)  # Binder has what the extra brings
    assert os.access(ROOT / "binder" / "postBuild", os.X_OK)


@pytest.mark.slow
def test_binder_environment_runs_the_quickstart(tmp_path: Path) -> None:
    version = repo2docker_python()  # rebuild with the very Python Binder would use
    interpreter = (
        sys.executable
        if f"{sys.version_info[0]}.{sys.version_info[1]}" == version
        else shutil.which(f"python{version}")
    )
    assert interpreter, f"Binder builds with Python {version}, which is not installed here"
    venv = tmp_path / "binder-venv"
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("RUNCOMFY_TOKEN", "VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(ROOT / "binder" / "requirements.txt")], check=True, env=env, timeout=900)
    # Binder runs postBuild in its own clone; in this checkout it would leave a build/ folder behind.
    clone = tmp_path / "clone"
    shutil.copytree(
        ROOT, clone, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", ".*_cache")
    )
    subprocess.run(["bash", str(clone / "binder" / "postBuild")], check=True, env=env, cwd=clone, timeout=300)
    run = f"""
import nbformat
from nbclient import NotebookClient
nb = nbformat.read({str(ROOT / "notebooks" / "quickstart.ipynb")!r}, as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3", resources={{"metadata": {{"path": {str(tmp_path)!r}}}}}).execute()
import seqnb, sys
print("seqnb from", seqnb.__file__)
print(nb.cells[-2].outputs[0]["data"]["text/plain"])
"""
    proc = subprocess.run(
        [str(python), "-c", run], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(venv) in proc.stdout  # seqnb came from the Binder environment, not this checkout's
    assert proc.stdout.count("'completed', 3") == 2
