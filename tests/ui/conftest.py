"""A sweep the matrix and duel views are tried on: 3 prompts that differ in their last words x 4 seeds."""

from __future__ import annotations

import pytest

import seqnb

STYLE = "Generate 3 images of a lighthouse keeper's day, from dawn to night, in "
STYLES = ("ink drawing", "watercolor", "woodcut")


@pytest.fixture
def sweep(seqnb_client: seqnb.Client) -> seqnb.Sweep:
    """3 prompts x 4 seeds, done and downloaded."""
    runs = seqnb_client.sweep(prompts=[STYLE + s for s in STYLES], seeds=[1, 2, 3, 4], quiet=True)
    seqnb_client.wait_all(runs, timeout=60)
    seqnb_client.settle(timeout=60)
    return runs
