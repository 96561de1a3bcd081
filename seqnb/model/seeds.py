"""Seeds: the one range the upstream models document, and the one random source for fresh seeds.

The global ``random`` generator belongs to the user (their ``random.seed(...)`` must not change
which seeds seqnb rolls, nor seqnb's rolls theirs), so fresh seeds come from a generator of our own.
"""

from __future__ import annotations

import random

__all__ = ["FRESH_SEEDS", "INT64_RANGE", "SEED_HINT", "SEED_RANGE", "fresh_seed"]

SEED_RANGE = range(-1, 2**31)
"""Every seed a request may carry: -1 (the model picks) to 2147483647, as the upstream API documents."""

FRESH_SEEDS = range(0, SEED_RANGE.stop)
"""The seeds seqnb rolls when you ask for a new one (never -1: a rolled seed is one you can reuse)."""

INT64_RANGE = range(-(2**63), 2**63)
"""What a 64-bit integer holds: no API takes a seed beyond it, and no ledger column holds one."""

SEED_HINT = f"use a seed from {SEED_RANGE.start} to {SEED_RANGE.stop - 1}"
"""What to do about a seed out of range, in the words every message uses."""

_generator = random.Random()


def fresh_seed() -> int:
    """A new seed from ``FRESH_SEEDS``, drawn from seqnb's own generator."""
    return _generator.randrange(FRESH_SEEDS.start, FRESH_SEEDS.stop)
