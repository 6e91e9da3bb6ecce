"""The course's price-balanced sample, de-duplication, and the seeded train/test split.

The course (2024, week 6 day 2) put items in $1 slots by rounded price; a slot with at most
`bucket_cap` items (course: 1,200) or at `keep_from` dollars and above (course: 240) is kept
whole, a fuller one is sampled down to `bucket_cap` without replacement, weighting every
category 5 and Automotive 1 (Automotive dominated the raw data). The course seeded
`np.random.seed(42)`; here one `numpy.random.default_rng(seed)` drives the slot draws (slots
in increasing price) and then the shuffle, so the same candidates and seed give the same
split on every machine.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from harness.curate.clean import normalized_title

BUCKET_CAP, KEEP_FROM = 1200, 240
WEIGHTS = {"Automotive": 1.0}
OTHER_WEIGHT = 5.0


def deduplicate(candidates: list) -> tuple[list, int]:
    """Keep the first candidate of each normalized title (input order); return (kept, dropped count)."""
    seen, kept = set(), []
    for c in candidates:
        key = normalized_title(c.title)
        if key not in seen:
            seen.add(key)
            kept.append(c)
    return kept, len(candidates) - len(kept)


def balanced(candidates: list, rng: np.random.Generator, *, bucket_cap: int = BUCKET_CAP,
             keep_from: int = KEEP_FROM) -> list:
    """The course's slots $1-$999: small or expensive slots whole, full ones sampled (weighted by category)."""
    slots = defaultdict(list)
    for c in candidates:
        slots[round(c.price)].append(c)
    sample = []
    for price in range(1, 1000):
        slot = slots.get(price, [])
        if price >= keep_from or len(slot) <= bucket_cap:
            sample.extend(slot)
            continue
        weights = np.array([WEIGHTS.get(c.category, OTHER_WEIGHT) for c in slot])
        chosen = rng.choice(len(slot), size=bucket_cap, replace=False, p=weights / weights.sum())
        sample.extend(slot[i] for i in sorted(chosen))
    return sample


def split(sample: list, rng: np.random.Generator, test_size: int) -> tuple[list, list]:
    """Shuffle with the seeded generator; the first `test_size` are the test split, the rest train."""
    order = rng.permutation(len(sample))
    shuffled = [sample[i] for i in order]
    return shuffled[:test_size], shuffled[test_size:]
