"""What the package carries beyond the code: its license, a page for the package index, an sdist that tests itself."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
NOT_SOURCE = (".git", ".venv", "dist", "build", "*.egg-info", "__pycache__", "*.pyc", ".*_cache", ".hypothesis")


def test_the_license_is_apache_2_and_the_metadata_says_so() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"] and "TERMS AND CONDITIONS" in text
    assert PROJECT["license"] == "Apache-2.0" and PROJECT["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in PROJECT["classifiers"])  # the SPDX expression says it (PEP 639)


def test_the_package_index_page_shows_nothing_that_can_break() -> None:
    page = (ROOT / PROJECT["readme"]).read_text()
    assert PROJECT["readme"] != "README.md"  # the README shows images from the source tree
    assert "![" not in page and "<img" not in page
    links = re.findall(r"\]\(([^)]+)\)", page)
    assert all(link.startswith("https://") for link in links), links  # nothing relative to a tree the index lacks
    assert "urls" not in PROJECT, "seqnb has no public home yet: a project URL would be a placeholder"


def test_no_badge_points_at_a_repository_that_does_not_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "mybinder.org/v2/" not in readme and "badge_logo" not in readme


def source_files(*folders: str) -> set[str]:
    """The files of ``folders`` in the source tree, as an sdist names them (no caches, no bytecode)."""
    found = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*"):
            parts = path.relative_to(ROOT).parts
            if path.is_file() and not any(
                Path(*parts[: i + 1]).match(p) for i in range(len(parts)) for p in NOT_SOURCE
            ):
                found.add("/".join(parts))
    return found


@pytest.mark.slow
def _has_build_front_end() -> bool:
    """Whether ``python -m build`` can run: the package, not a stray build/ folder taken for a namespace package."""
    try:
        return importlib.util.find_spec("build.__main__") is not None
    except ModuleNotFoundError:
        return False


def test_the_sdist_carries_the_whole_test_suite_and_the_license(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy: the build leaves no egg-info in the work tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    python_path = ""
    if not _has_build_front_end():
        tools = tmp_path / "tools"
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(tools), "build"]
        subprocess.run(pip, check=True, capture_output=True, timeout=600)
        python_path = str(tools)
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PYTHONPATH": python_path},
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (sdist,) = (tmp_path / "dist").glob("seqnb-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    needed = source_files("tests", "notebooks", "docs", "binder", "seqnb") | {"LICENSE", "README.md", ".ci/run"}
    assert {"tests/conftest.py", "tests/cli/test_packaging.py", "notebooks/quickstart.ipynb"} <= needed
    assert not needed - names, sorted(needed - names)
    (wheel,) = (tmp_path / "dist").glob("seqnb-*.whl")  # built from the sdist
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in zf.namelist())
    assert "License-Expression: Apache-2.0" in metadata and "License-File: LICENSE" in metadata
    assert "![" not in metadata  # the index page, text only
