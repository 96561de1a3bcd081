"""One seed range everywhere, and fresh seeds that neither use nor disturb the user's global ``random``."""

from __future__ import annotations

import random

import seqnb
from seqnb.model.seeds import FRESH_SEEDS, SEED_HINT, SEED_RANGE, fresh_seed
from seqnb.model.validation import validate_payload
from seqnb.ui.request_panel import RequestPanel


def test_rolling_seeds_leaves_the_users_random_alone() -> None:
    random.seed(5)
    expected = [random.random() for _ in range(3)]
    random.seed(5)
    rolled = [fresh_seed() for _ in range(50)]
    assert [random.random() for _ in range(3)] == expected  # seqnb drew nothing from the global generator
    assert all(s in FRESH_SEEDS for s in rolled) and len(set(rolled)) > 40


def test_the_request_panel_rolls_from_seqnbs_generator(seqnb_client: seqnb.Client) -> None:
    panel = RequestPanel(seqnb_client)
    random.seed(7)
    expected = random.random()
    random.seed(7)
    panel.lock.value = False
    seed = panel.roll_seed()
    assert random.random() == expected and seed in FRESH_SEEDS


def test_validation_and_the_hint_use_the_one_range() -> None:
    last = SEED_RANGE.stop - 1
    ok = validate_payload("seedream-4.5", {"prompt": "Generate 2 images of a kite", "seed": last, **_count()})
    bad = validate_payload("seedream-4.5", {"prompt": "Generate 2 images of a kite", "seed": last + 1, **_count()})
    assert not ok.problems and [p.code for p in bad.problems] == ["seed_range"]  # a warning: it may be wrapped
    assert str(last) in SEED_HINT and str(SEED_RANGE.start) in SEED_HINT


def _count() -> dict[str, int]:
    return {"sequential_image_generation_options": 2}
