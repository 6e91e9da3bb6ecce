"""Scoring exactly as the course's Tester, plus confidence intervals it did not have.

Course rules: error = |guess - truth|; RMSLE = sqrt(mean((log(guess+1) - log(truth+1))^2));
green ("hit") if error < 40 or error/truth < 0.2; orange if error < 80 or error/truth < 0.4;
else red. A reply with no number is a guess of 0 (and we count it as a parse failure).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

SCORING_VERSION = "course-v1"
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0
_NUMBER = re.compile(r"[-+]?\d*\.\d+|\d+")


def parse_price(reply: str | None) -> float | None:
    """The course's parse: drop '$' and ',', take the first number. None when there is none."""
    if reply is None:
        return None
    match = _NUMBER.search(reply.replace("$", "").replace(",", ""))
    return float(match.group()) if match else None


def colour(error: float, truth: float) -> str:
    if error < 40 or error / truth < 0.2:
        return "green"
    if error < 80 or error / truth < 0.4:
        return "orange"
    return "red"


def score_item(guess: float, truth: float) -> dict:
    error = abs(guess - truth)
    # log(guess + 1) is undefined for guesses <= -1; the course never met one: clamp at 0.
    sle = (math.log(max(guess, 0.0) + 1) - math.log(truth + 1)) ** 2
    return {"error": error, "sle": sle, "colour": colour(error, truth)}


def bootstrap_ci(values, *, samples=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED, level=0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (fixed seed: the same data gives the same CI)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    means = _resampled_means(values, samples, seed)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _resampled_means(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n, out, chunk = len(values), np.empty(samples), max(1, 2_000_000 // max(len(values), 1))
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        out[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return out


def metrics(df: pd.DataFrame) -> dict:
    """Run-level metrics from a per-item frame with columns truth, guess, error, sle, colour, parsed."""
    n = len(df)
    colours = df["colour"].value_counts()
    lo, hi = bootstrap_ci(df["error"].to_numpy())
    failures = int((~df["parsed"]).sum())
    return {
        "n": n,
        "mae": float(df["error"].mean()),
        "mae_ci_low": lo,
        "mae_ci_high": hi,
        "rmsle": float(math.sqrt(df["sle"].mean())),
        "hit_rate": float(100.0 * colours.get("green", 0) / n),
        "green": int(colours.get("green", 0)),
        "orange": int(colours.get("orange", 0)),
        "red": int(colours.get("red", 0)),
        "parse_failures": failures,
        "parse_failure_rate": float(100.0 * failures / n),
        "scoring_version": SCORING_VERSION,
    }


def paired_bootstrap(errors_a, errors_b, *, samples=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED, level=0.95) -> dict:
    """Is run A's mean absolute error lower than B's on the same items?

    Resamples items (keeping each item's pair), so the shared difficulty of items cancels.
    `better` is 'A' or 'B' when the CI of mean(err_A - err_B) excludes 0, else None.
    """
    a, b = np.asarray(errors_a, float), np.asarray(errors_b, float)
    if a.shape != b.shape or len(a) == 0:
        raise ValueError("paired bootstrap needs two equally long, non-empty error arrays")
    diffs = _resampled_means(a - b, samples, seed)
    lo, hi = np.quantile(diffs, [(1 - level) / 2, 1 - (1 - level) / 2])
    p = min(1.0, 2 * min(np.mean(diffs >= 0), np.mean(diffs <= 0)))
    better = "A" if hi < 0 else "B" if lo > 0 else None
    return {"mean_diff": float((a - b).mean()), "ci_low": float(lo), "ci_high": float(hi),
            "p_value": float(p), "better": better, "n": int(len(a))}
