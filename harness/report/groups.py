"""Grouped metrics: MAE (bootstrap 95% CI), hit rate and bias per category and per truth price band.

Everything comes from a run's stored per-item data (truth, guess, error, colour, category), so
recorded and imported runs are grouped like measured ones. The figures are a pandas groupby of
those items; the CIs are scoring.bootstrap_ci's, computed for every (run, group) of one size in
one pass (the draws depend only on the size), which keeps a 50-run report fast.

Price bands are fixed, not quantiles, so one band means the same prices on every task and run:
the course's items cost $0.50-$999.49 (median about $175). Under $25 the course's $40 rule makes
almost any guess a hit; $25-100 and $100-250 hold most items; from $250 up the 20% rule starts
to matter more than the $40 one; $500 and over are the rare expensive items the course's
models most often underprice.
"""
from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from harness.report.categories import category_labels
from harness.scoring import bootstrap_ci_many, paired_bootstrap_many

BAND_EDGES = (25.0, 100.0, 250.0, 500.0)
BAND_LABELS = ("under $25", "$25–100", "$100–250", "$250–500", "$500 and over")
GROUPINGS = {"category": "Category", "band": "Price band"}      # column of item_groups -> heading
METRIC_COLUMNS = ["n", "mae", "mae_ci_low", "mae_ci_high", "hit_rate", "bias"]


def price_band(truth) -> pd.Categorical:
    """Each truth's band: [0, 25), [25, 100), [100, 250), [250, 500), [500, inf), in BAND_LABELS."""
    return pd.Categorical.from_codes(np.searchsorted(BAND_EDGES, np.asarray(truth, float), side="right"),
                                     categories=list(BAND_LABELS), ordered=True)


def item_groups(items: pd.DataFrame) -> pd.DataFrame:
    """A run's items with what grouping needs: id, category, band, error, signed error, hit."""
    return pd.DataFrame({"id": items["id"].to_numpy(), "category": category_labels(items["category"]).to_numpy(),
                         "band": price_band(items["truth"]), "error": items["error"].to_numpy(float),
                         "signed": items["guess"].to_numpy(float) - items["truth"].to_numpy(float),
                         "hit": (items["colour"] == "green").to_numpy()})


def grouped_metrics(entries: list, by: str, frames: list[pd.DataFrame] | None = None) -> list[pd.DataFrame]:
    """Per entry (with per-item data), a frame indexed by group (`by`: category or band) with
    n, mae, mae_ci_low, mae_ci_high, hit_rate (% green) and bias (mean of guess - truth).
    `frames`: the entries' item_groups, when the caller has them already."""
    return group_board(entries, by, frames).tables


def _group_table(frames: list[pd.DataFrame], by: str) -> tuple[pd.DataFrame, dict]:
    """The pandas groupby of every run's items by (run, group), without CIs, and each (run,
    group)'s errors in stored order (for the bootstrap)."""
    items = pd.concat([f.assign(run=k) for k, f in enumerate(frames)], ignore_index=True)
    grouped = items.groupby(["run", by], observed=True, sort=True)
    table = grouped.agg(n=("error", "size"), mae=("error", "mean"), hit_rate=("hit", "mean"),
                        bias=("signed", "mean"))
    table["hit_rate"] *= 100.0
    errors = items["error"].to_numpy()
    return table, {key: errors[rows] for key, rows in grouped.indices.items()}


def _split(table: pd.DataFrame, runs: int, by: str) -> list[pd.DataFrame]:
    """The (run, group) table as one frame per run, ordered (one sort, then slices: 50 runs in ms)."""
    if by != "band":        # categories by size (largest first), then name; bands stay in price order
        order = np.lexsort((table.index.get_level_values(by).astype(str), -table["n"].to_numpy(),
                            table.index.get_level_values("run")))
        table = table.iloc[order]
    bounds = np.searchsorted(table.index.get_level_values("run").to_numpy(), np.arange(runs + 1))
    flat = table.droplevel("run")
    return [flat.iloc[bounds[k]:bounds[k + 1]] for k in range(runs)]


def bootstrap_by_size(samples: dict, pairs: dict) -> tuple[dict, dict]:
    """scoring.bootstrap_ci of each of `samples` (key -> errors) and scoring.paired_bootstrap of each
    of `pairs` (key -> (errors_a, errors_b)), in one pass per length: the seeded draws depend only
    on the length, so each length's draws are made once and serve both."""
    sizes = defaultdict(lambda: ([], []))
    for key, values in samples.items():
        sizes[len(values)][0].append(key)
    for key, (a, _) in pairs.items():
        if len(a):
            sizes[len(a)][1].append(key)

    def one_size(keys: tuple[list, list]) -> tuple[list, list]:
        ci_keys, test_keys = keys
        cis = bootstrap_ci_many(np.stack([samples[key] for key in ci_keys])) if ci_keys else []
        tests = paired_bootstrap_many([pairs[key] for key in test_keys]) if test_keys else []
        return list(zip(ci_keys, cis)), list(zip(test_keys, tests))

    # numpy draws and BLAS release the GIL: two sizes at a time take ~0.6 of the time on two cores
    cis, tests = {}, {}
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        for done_cis, done_tests in pool.map(one_size, [sizes[n] for n in sorted(sizes, reverse=True)]):
            cis.update(done_cis)
            tests.update(done_tests)
    return cis, tests


def paired_by_group(a, b, by: str) -> pd.DataFrame:
    """Is run A better than run B within each group? A paired bootstrap on the items both hold,
    per group (`by`: category or band); indexed by group, columns those of scoring.paired_bootstrap."""
    shared = _shared_errors(item_groups(a.items), item_groups(b.items), by)
    keys = sorted(shared, key=lambda key: _group_order(by, key))
    tests = bootstrap_by_size({}, shared)[1]
    results = [tests.get(key) for key in keys]
    frame = pd.DataFrame.from_records(results, index=pd.Index(keys, name=by),
                                      columns=["mean_diff", "ci_low", "ci_high", "p_value", "better", "n"])
    frame["better"] = pd.Series([r["better"] for r in results], index=frame.index, dtype=object)   # None, not NaN
    return frame


def _shared_errors(ga: pd.DataFrame, gb: pd.DataFrame, by: str) -> dict:
    """group -> (A's errors, B's errors) on the items both runs hold, in A's order."""
    both = ga[["id", by, "error"]].merge(gb[["id", "error"]], on="id", suffixes=("_a", "_b"))
    errors_a, errors_b = both["error_a"].to_numpy(), both["error_b"].to_numpy()
    return {key: (errors_a[rows], errors_b[rows]) for key, rows in both.groupby(by, observed=True).indices.items()}


def _group_order(by: str, key) -> tuple:
    return (BAND_LABELS.index(key), "") if by == "band" else (0, str(key))


@dataclass
class GroupBoard:
    """One task's "which model for which group": runs x groups of MAE, and in each group the run
    with the lowest MAE tested against the runner-up on the items both hold in that group."""

    by: str
    entries: list
    tables: list[pd.DataFrame]                  # grouped_metrics, one per entry
    groups: list = field(default_factory=list)  # column order
    sizes: dict = field(default_factory=dict)   # group -> items (the most any run holds)
    best: dict = field(default_factory=dict)    # group -> (best entry, runner-up or None, paired test or None)

    @property
    def heading(self) -> str:
        return GROUPINGS[self.by]

    @cached_property
    def _rows(self) -> list[list[tuple]]:
        """Each run's (group, metrics as a dict), in the table's order: what the pages show."""
        return [list(zip(t.index, t.to_dict("records"))) for t in self.tables]

    def cells(self):
        """(entry, [group's metrics as a dict or None, is-best] per group), one per run, in rank order."""
        for entry, rows in zip(self.entries, self._rows):
            found = dict(rows)
            yield entry, [(found.get(g), g in self.best and self.best[g][0] is entry) for g in self.groups]

    def rows_of(self, entry) -> list[tuple[str, dict]]:
        """(group, its metrics) of one run, for its page (none when the run is not on this board)."""
        return next((rows for e, rows in zip(self.entries, self._rows) if e is entry), [])


def group_board(entries: list, by: str, frames: list[pd.DataFrame] | None = None) -> GroupBoard:
    """The GroupBoard of one task's runs with per-item data (in rank order)."""
    if not entries:
        return GroupBoard(by, [], [])
    frames = frames if frames is not None else [item_groups(e.items) for e in entries]
    table, samples = _group_table(frames, by)
    sizes = table["n"].groupby(level=by, observed=True).max()
    groups = sorted(sizes.index, key=lambda g: _group_order(by, g) if by == "band" else (-sizes[g], str(g)))
    pairs, best, shared = {}, {}, {}
    for group in groups:
        maes = table["mae"].xs(group, level=by)
        ranked = sorted(zip(maes.to_numpy(), maes.index))      # by MAE, then leaderboard order
        first = ranked[0][1]
        second = ranked[1][1] if len(ranked) > 1 else None
        best[group] = [entries[first], entries[second] if second is not None else None, None]
        if second is not None:
            if (first, second) not in shared:
                shared[first, second] = _shared_errors(frames[first], frames[second], by)
            if group in shared[first, second]:
                pairs[group] = shared[first, second][group]
    cis, tests = bootstrap_by_size(samples, pairs)
    table["mae_ci_low"] = [cis[key][0] for key in table.index]
    table["mae_ci_high"] = [cis[key][1] for key in table.index]
    for group, test in tests.items():
        best[group][2] = test
    return GroupBoard(by, list(entries), _split(table[METRIC_COLUMNS], len(entries), by), groups,
                      {g: int(sizes[g]) for g in groups}, {g: tuple(v) for g, v in best.items()})
