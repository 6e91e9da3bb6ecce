"""The Pareto front of (MAE, cost) points: the rows no other row beats on both at once.

Pure: numbers in, indices out. MAE is always lower-is-better; a cost's direction is the
caller's (`better="lower"` for parameters, seconds or dollars, `"higher"` for items/s, which is
negated so one rule serves both). A row dominates another when it is at least as good on both
and strictly better on one: so exact duplicates both stay on the front (neither beats the
other), while at an equal cost only the lowest MAE stays and at an equal MAE only the cheapest.
A point with a missing or non-finite figure takes no part: it is neither on the front nor
dominates anything (the report lists such rows as left out).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import groupby

LOWER, HIGHER = "lower", "higher"


def _finite(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def pareto_front(mae: Sequence, cost: Sequence, *, better: str = LOWER) -> list[int]:
    """The indices (ascending) of the points on the front of lower MAE and better cost."""
    if better not in (LOWER, HIGHER):
        raise ValueError(f"better must be {LOWER!r} or {HIGHER!r}, not {better!r}")
    if len(mae) != len(cost):
        raise ValueError("mae and cost must be equally long")
    sign = 1.0 if better == LOWER else -1.0
    points = sorted((sign * c, m, i) for i, (m, c) in enumerate(zip(map(_finite, mae), map(_finite, cost)))
                    if m is not None and c is not None)
    front, best = [], math.inf         # best: the lowest MAE at any strictly better cost seen so far
    for _, level in groupby(points, key=lambda p: p[0]):
        level = list(level)             # one cost, lowest MAE first
        lowest = level[0][1]
        if lowest < best:
            front += [i for _, m, i in level if m == lowest]
            best = lowest
    return sorted(front)
