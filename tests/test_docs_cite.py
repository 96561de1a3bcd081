"""The docs cite only what a user of the repository can read (issue #23)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_doc_cites_a_file_outside_the_repository() -> None:
    texts = {p: p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    cited = [
        f"{p.name}: {word}"
        for p, text in texts.items()
        for word in ("API-NOTES", "shared/seeds", "/work/")
        if word in text
    ]
    assert not cited, cited
