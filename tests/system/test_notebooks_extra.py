"""README's notebooks command, alone, in a fresh virtual environment: JupyterLab is there and the notebooks run (#23)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def readme_command() -> list[str]:
    """The README's set-up line that installs what the notebooks need (``pip install -e '.[notebooks]'``)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^(python3 -m pip install -e '\.\[notebooks\]') && (jupyter lab .+)$", readme, re.M)
    assert found, "the README's set-up lost its notebooks command"
    return shlex.split(found.group(1))


def what_failed(stderr: str) -> str:
    """The notebook nbconvert was on and the first traceback (the kernel's own, when the kernel died)."""
    books = re.findall(r"Converting notebook (\S+)", stderr)
    first = stderr.find("Traceback (most recent call last)")
    return f"in {books[-1] if books else '?'}:\n{stderr[first : first + 2500] if first >= 0 else stderr[-2500:]}"


def test_the_readme_names_the_notebooks_extra_and_it_is_complete() -> None:
    import tomllib

    assert readme_command()[-1] == ".[notebooks]"
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["notebooks"]
    names = {re.split(r"[<>=\[; ]", r, maxsplit=1)[0] for r in extra}
    assert {"jupyterlab", "ipykernel", "matplotlib"} <= names  # JupyterLab, its kernel, ledger_analysis's plots


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_notebooks_run_in_a_venv_made_only_from_the_readme_command(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python, bin_ = venv / "bin" / "python", venv / "bin"
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("RUNCOMFY_")
    }
    env.update(PATH=f"{bin_}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path / "home"))
    env.update(SEQNB_CACHE=str(tmp_path / "cache"), RUNCOMFY_CONFIG_DIR=str(tmp_path / "no-login"))
    command = [str(python), *readme_command()[1:]]  # python3 -> the new environment's python
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]

    lab = subprocess.run(
        [str(bin_ / "jupyter"), "lab", "--version"], env=env, capture_output=True, text=True, timeout=60
    )
    assert lab.returncode == 0 and lab.stdout.strip(), lab.stderr
    kernels = subprocess.run(
        [str(bin_ / "jupyter"), "kernelspec", "list", "--json"], env=env, capture_output=True, text=True, timeout=60
    )
    spec = json.loads(kernels.stdout)["kernelspecs"]["python3"]
    assert Path(spec["resource_dir"]).is_relative_to(venv), spec  # the kernel is this environment's

    work = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", work)
    books = sorted(str(p) for p in work.glob("*.ipynb"))
    assert len(books) >= 3
    run = subprocess.run(
        [str(bin_ / "jupyter"), "nbconvert", "--to", "notebook", "--execute", "--inplace", *books],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, what_failed(run.stderr)
    for book in books:
        cells = json.loads(Path(book).read_text(encoding="utf-8"))["cells"]
        assert not [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"], book
    assert (work / "seqnb-output" / "runs.csv").exists()  # ledger_analysis ran to its end, matplotlib and all
