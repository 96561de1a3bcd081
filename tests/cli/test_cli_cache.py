"""seqnb cache: show the image cache, prune it least recently used first."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from seqnb.cli import main
from seqnb.images.cache import ImageCache


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((96, 96), 40 + seed).convert("RGB").save(buf, format="PNG")
    return buf.getvalue()


def test_show_and_prune(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = ImageCache(tmp_path / "c")
    for i in range(4):
        cache.store(f"https://images.example/{i}.png", png(i))
    assert main(["cache", "--dir", str(tmp_path / "c")]) == 0
    shown = capsys.readouterr().out
    assert "files: 4" in shown
    assert main(["cache", "prune", "--dir", str(tmp_path / "c"), "--max-bytes", "1K"]) == 0
    pruned = capsys.readouterr().out
    assert pruned.startswith("removed 4 file(s)") and "files: 0" in pruned
    assert cache.lookup("https://images.example/0.png") is None


def test_a_bad_size_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "prune", "--dir", str(tmp_path), "--max-bytes", "lots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--max-bytes" in err[0] and "2G" in err[0]
