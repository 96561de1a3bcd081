"""The wheel ships the job board's front end: seqnb/ui/static/board.js and board.css are package data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]


def test_the_wheel_holds_the_board_front_end(tmp_path: Path) -> None:
    source = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the work tree
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "docs/package-index.md"):  # build reads
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "seqnb", source / "seqnb", ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = (tmp_path / "dist").glob("seqnb-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name in ("board.js", "board.css"):
            member = f"seqnb/ui/static/{name}"
            assert member in names, f"{member} is not in {wheel.name}: see [tool.setuptools.package-data]"
            assert zf.read(member) == (ROOT / member).read_bytes()
        assert "seqnb/py.typed" in names
