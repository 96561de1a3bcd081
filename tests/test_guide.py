"""The guide's Python examples run as written, in order, against the embedded emulator (#32): an example that cannot
work fails the suite, as the README's do (tests/test_readme.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_readme import ROOT, python_blocks

GUIDE = ROOT / "docs" / "guide.md"


def test_the_guide_lists_every_section_it_has() -> None:
    text = GUIDE.read_text()
    sections = re.findall(r"^## (.+)$", text, re.M)
    listed = re.findall(r"^- \[(.+?)\]\(#", text, re.M)
    assert listed == sections, "the guide's contents list names every ## section, in order"


@pytest.mark.slow
def test_the_guide_examples_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One notebook cell per block, in the guide's order, in a real kernel: no error."""
    from tests.notebook_cells import run_offline

    blocks = python_blocks(GUIDE.read_text())
    assert len(blocks) >= 10
    nb = run_offline(blocks, tmp_path, monkeypatch, allow_errors=True)
    failed = [
        (b.strip().splitlines()[0], o["ename"], o["evalue"][:300])
        for b, c in zip(blocks, nb.cells, strict=True)
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not failed, "\n".join(f"block starting {first!r}: {name}: {value}" for first, name, value in failed)
