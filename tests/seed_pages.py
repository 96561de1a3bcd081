"""The model pages kept in tests/fixtures/seeds (copies of shared/seeds): the input schema each publishes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SEEDS = Path(__file__).parent / "fixtures" / "seeds"
PAGES = {
    "bytedance/seedream-4-0/sequential": SEEDS / "seedream-4-0-sequential.txt",
    "bytedance/seedream-4-5/sequential": SEEDS / "seedream-4-5-sequential.txt",
}


def page_schema(model: str) -> dict[str, Any]:
    """The JSON after "Input schema" in the model's page, parsed."""
    text = PAGES[model].read_text(encoding="utf-8")
    block = text[text.index("Input schema") + len("Input schema") : text.index("Output schema")]
    return dict(json.loads(block))
