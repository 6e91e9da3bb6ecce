"""Scoring exactly as the course's Tester, plus confidence intervals it did not have.

Course rules: error = |guess - truth|; RMSLE = sqrt(mean((log(guess+1) - log(truth+1))^2));
green ("hit") if error < 40 or error/truth < 0.2; orange if error < 80 or error/truth < 0.4;
else red. A reply with no number is a guess of 0 (and we count it as a parse failure).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

SCORING_VERSION = "course-v1"
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0
_NUMBER = re.compile(r"[-+]?\d*\.\d+|\d+")
# Largest guess a reply may give (a quadrillion dollars): past it, or not finite, the reply is a
# parse failure (a guess of 0), so no error sum can overflow. No course reply comes near it.
MAX_GUESS = 1e15


FORMATS = ("money", "cost", "percent", "number", "rate", "count")
SOURCES = ("metrics", "derived", "manifest")


@dataclass(frozen=True)
class Metric:
    """One figure a run reports: the schema every table, export and summary reads (HELM's way).

    Consumers (the report's columns and tooltips, leaderboard.csv, the CLI summary, the lm-eval
    export) pick metrics from METRICS by key and take label, direction and format from here, so
    they cannot disagree; tests/test_metric_schema.py checks each consumer against this table.
    """

    key: str                # the key in metrics.json (source metrics), a displayed field, or a manifest figure
    label: str              # a column header; the CLI summary's name for it
    description: str        # a tooltip, an export's description
    lower_is_better: bool
    format: str             # one of FORMATS: how show() writes a value
    unit: str = ""
    digits: int = 2         # decimals shown (money, percent, number)
    source: str = "metrics"     # metrics: metrics.json | derived: computed for display | manifest: the run's manifest
    headline: bool = False  # a task may choose it as a headline metric (the task YAML's `metrics:`)
    ci: tuple[str, str] | None = None   # the metrics.json keys of its 95% CI bounds, if it has one

    def __post_init__(self):
        if self.format not in FORMATS or self.source not in SOURCES:
            raise ValueError(f"metric {self.key}: format must be one of {FORMATS}, source one of {SOURCES}")

    @property
    def better(self) -> str:
        return "lower is better" if self.lower_is_better else "higher is better"

    @property
    def tooltip(self) -> str:
        return f"{self.description} ({self.better})"

    def show(self, value) -> str:
        """The value as every table and summary writes it ("—" when unknown, not finite or not a number)."""
        try:
            value = float(value) if not isinstance(value, (bool, str)) else None
        except (TypeError, ValueError):
            value = None
        if value is None or not math.isfinite(value):
            return "—"
        if self.format == "money":
            return f"{'-' if value < 0 else ''}${abs(value):,.{self.digits}f}"
        if self.format == "cost":        # cents of a cent matter for a cheap run
            return "$0" if value == 0 else f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
        if self.format == "percent":
            return f"{value:,.{self.digits}f}%"
        if self.format == "rate":
            return f"{value:,.0f}" if value >= 100 else f"{value:,.{self.digits}f}"
        if self.format == "count":
            return f"{int(value):,}"
        return f"{value:,.{self.digits}f}"


METRICS: tuple[Metric, ...] = (
    Metric("mae", "MAE", "Mean absolute error between the guessed and the true price, in dollars; rows are "
           "ranked by it.", True, "money", "USD", headline=True, ci=("mae_ci_low", "mae_ci_high")),
    Metric("mse", "MSE", "Mean squared error in dollars squared (the 2025 edition's evaluator).", True, "number",
           "USD²", digits=0, headline=True),
    Metric("r2", "R²", "Coefficient of determination of the guesses against the true prices (the 2025 edition's "
           "evaluator).", False, "number", digits=3, headline=True),
    Metric("rmsle", "RMSLE", "Root mean squared log error: sqrt(mean((log(guess+1) - log(truth+1))^2)).", True,
           "number", headline=True),
    Metric("hit_rate", "Hits", "Share of items guessed within $40 or 20% of the true price (green), in percent.",
           False, "percent", "%", digits=1, headline=True),
    Metric("parse_failure_rate", "Parse failures", "Share of replies that held no number (scored as a guess of $0), "
           "in percent.", True, "percent", "%", digits=1),
    Metric("parse_rate", "Parsed", "Share of replies that held a number (100% minus the parse failures), in percent.",
           False, "percent", "%", digits=1, source="derived"),
    Metric("cost_usd", "Cost", "API cost of the run in dollars, from the provider's token prices (measured runs "
           "only).", True, "cost", "USD", source="manifest"),
    Metric("items_per_s", "Items/s", "Prediction throughput: items per second of prediction time (measured runs "
           "only).", False, "rate", "items/s", source="manifest"),
    Metric("verified_pct", "Verified", "Share of a re-run sample (pricebench verify) whose replies were identical "
           "to the stored ones, in percent.", False, "percent", "%", digits=0, source="manifest"),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}
HEADLINE_METRICS = tuple(m.key for m in METRICS if m.headline)


def parse_price(reply: str | None) -> float | None:
    """The course's parse: drop '$' and ',', take the first number. None when there is none,
    or when it is not finite or over MAX_GUESS (a 400-digit reply)."""
    if reply is None:
        return None
    match = _NUMBER.search(reply.replace("$", "").replace(",", ""))
    if not match:
        return None
    value = float(match.group())
    return value if math.isfinite(value) and abs(value) <= MAX_GUESS else None


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
    return bootstrap_ci_many(values[None, :], samples=samples, seed=seed, level=level)[0]


def bootstrap_cis(rows, *, samples=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED, level=0.95) -> list[tuple[float, float]]:
    """bootstrap_ci of each row (rows of one length, possibly empty), in one pass: a report that
    recomputes the metrics of 50 runs pays for the shared draws once (harness/runs/recheck.py)."""
    values = np.asarray(rows, dtype=float)
    if values.shape[1] == 0:
        return [(float("nan"), float("nan"))] * len(values)
    return bootstrap_ci_many(values, samples=samples, seed=seed, level=level)


def bootstrap_ci_many(rows, *, samples=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED, level=0.95) -> list[tuple[float, float]]:
    """bootstrap_ci of each row of a (k, n) array, in one pass over the same seeded draws: the
    same figures as k calls (the draws depend only on n; to rounding), for the cost of little more than one."""
    rows = np.asarray(rows, dtype=float)
    if rows.ndim != 2 or rows.shape[1] == 0:
        raise ValueError("bootstrap_ci_many needs a (k, n) array with n > 0")
    means = _resampled_means(rows, samples, seed)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2], axis=1)
    return [(float(a), float(b)) for a, b in zip(lo, hi)]


def _resampled_means(values: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Row-wise bootstrap means of a (k, n) array, every row over the same seeded draws.

    The draws depend only on (n, samples, seed), so they are cached as count matrices and
    all rows are averaged in one matrix product: a leaderboard's many paired tests on the
    same items cost little more than one (50 runs x 2,000 items: ~0.3 s instead of ~10 s).
    """
    k, n = values.shape
    out, start = np.empty((k, samples)), 0
    for counts in _draw_counts(n, samples, seed):
        rows = counts.shape[0]
        out[:, start:start + rows] = values @ counts.T.astype(float) / n
        start += rows
    return out


@lru_cache(maxsize=2)
def _draw_counts(n: int, samples: int, seed: int) -> tuple[np.ndarray, ...]:
    """How often each item is drawn in each resample (uint8 chunks: 20 MB for 10,000 x 2,000)."""
    rng = np.random.default_rng(seed)
    chunk, chunks = max(1, 2_000_000 // max(n, 1)), []
    for start in range(0, samples, chunk):
        rows = min(samples, start + chunk) - start
        idx = rng.integers(0, n, size=(rows, n)) + (np.arange(rows) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n)
        chunks.append(counts.astype(np.uint8) if counts.max() < 256 else counts)
    return tuple(chunks)


def mse(guesses, truths) -> float:
    """Mean squared error (the 2025 edition's evaluator)."""
    g, t = np.asarray(guesses, float), np.asarray(truths, float)
    return float(np.mean((g - t) ** 2)) if len(t) else float("nan")


def r2(guesses, truths) -> float:
    """Coefficient of determination, 1 - SS_res / SS_tot (sklearn's r2_score); nan when the truths
    are all equal or there are fewer than two."""
    g, t = np.asarray(guesses, float), np.asarray(truths, float)
    total = float(np.sum((t - t.mean()) ** 2)) if len(t) > 1 else 0.0
    return 1.0 - float(np.sum((g - t) ** 2)) / total if total > 0 else float("nan")


def normal_ci(values, level_z: float = 1.96) -> tuple[float, float]:
    """The 2025 evaluator's 95% CI of a mean: mean +- 1.96 * sd / sqrt(n) (sample sd, ddof=1)."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return (float("nan"), float("nan"))
    half = level_z * float(np.std(v, ddof=1)) / math.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def metrics(df: pd.DataFrame, mae_ci: tuple[float, float] | None = None) -> dict:
    """Run-level metrics from a per-item frame with columns truth, guess, error, sle, colour, parsed
    (`mae_ci`: the bootstrap CI of its errors, when already computed with bootstrap_cis)."""
    n = len(df)
    colours = df["colour"].value_counts()
    lo, hi = mae_ci if mae_ci is not None else bootstrap_ci(df["error"].to_numpy())
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
        # the 2025 edition's figures (shown where a task's headline metrics ask for them)
        "mse": mse(df["guess"], df["truth"]),
        "r2": r2(df["guess"], df["truth"]),
        "mae_ci_normal": list(normal_ci(df["error"])),
    }


def paired_bootstrap(errors_a, errors_b, *, samples=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED, level=0.95) -> dict:
    """Is run A's mean absolute error lower than B's on the same items?

    Resamples items (keeping each item's pair), so the shared difficulty of items cancels.
    `better` is 'A' or 'B' when the CI of mean(err_A - err_B) excludes 0, else None.
    """
    return paired_bootstrap_many([(errors_a, errors_b)], samples=samples, seed=seed, level=level)[0]


def paired_bootstrap_many(pairs, *, samples=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED, level=0.95) -> list[dict]:
    """paired_bootstrap for many (errors_a, errors_b) pairs on the same n items, in one pass."""
    if not pairs:
        return []
    if any(np.shape(a) != np.shape(b) or len(a) == 0 for a, b in pairs) or len({len(a) for a, _ in pairs}) > 1:
        raise ValueError("paired bootstrap needs equally long, non-empty error arrays (the same items)")
    diffs = np.stack([np.asarray(a, float) - np.asarray(b, float) for a, b in pairs])
    means = _resampled_means(diffs, samples, seed)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2], axis=1)
    results = []
    for i in range(len(diffs)):
        p = min(1.0, 2 * min(np.mean(means[i] >= 0), np.mean(means[i] <= 0)))
        better = "A" if hi[i] < 0 else "B" if lo[i] > 0 else None
        results.append({"mean_diff": float(diffs[i].mean()), "ci_low": float(lo[i]), "ci_high": float(hi[i]),
                        "p_value": float(p), "better": better, "n": int(diffs.shape[1])})
    return results
