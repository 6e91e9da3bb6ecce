"""From entries to the tables a report shows: ranked leaderboards and comparison groups.

Ranking is by mean absolute error (the course's headline figure). Each row with per-item
data is tested against the nearest row above it on the same items (paired bootstrap): when
the two are not significantly different the row gets a marker.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import pandas as pd

from harness.predictors.base import QUANTS
from harness.report.collect import Entry
from harness.scoring import METRIC_BY_KEY, paired_bootstrap, paired_bootstrap_many


@dataclass
class Row:
    rank: int
    entry: Entry
    versus_above: dict | None = None     # paired bootstrap vs the row above (None: no per-item data)
    above_label: str | None = None

    @property
    def tie_with_above(self) -> bool:
        return self.versus_above is not None and self.versus_above["better"] is None


# leaderboard.csv's metrics (harness.scoring.METRICS), each followed by its CI bounds; the order is stable.
# Only figures the stored predictions determine: the same runs give the same bytes on any machine
# (a store merged from bundles included). Measured throughput goes to timings.csv instead.
CSV_METRICS = ("mae", "rmsle", "hit_rate", "parse_rate", "cost_usd", "verified_pct", "mse", "r2")
TIMING_COLUMNS = ["task", "label", "model", "run_id", "items_per_s"]
SHOWN_COLUMNS = ["n", *[name for key in CSV_METRICS for name in (key, *(METRIC_BY_KEY[key].ci or ()))]]
FRAME_COLUMNS = ["task", "label", "model", "kind", "provenance", "quant", "prompt", "run_id", "mixed", *SHOWN_COLUMNS]


def leaderboard_frame(entries: list[Entry]) -> pd.DataFrame:
    """One line per entry with the numbers the leaderboard shows (handy for notebooks too).

    The figures are the entry's displayed fields (`Entry.shown`), the very ones the HTML shows.
    """
    records = []
    for e in entries:
        shown = e.shown
        records.append({"task": e.task, "label": e.label, "model": e.model, "kind": e.kind,
                        "provenance": e.provenance, "quant": e.quant, "prompt": e.prompt, "run_id": e.run_id,
                        "mixed": "mixed" if shown["mixed"] else "", **{name: shown[name] for name in SHOWN_COLUMNS}})
    frame = pd.DataFrame.from_records(records, columns=FRAME_COLUMNS)
    for name in SHOWN_COLUMNS:      # numbers stay numbers (an empty cell is NaN, not the text "None")
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("Int64" if name == "n" else float)
    return frame


def rank(entries: list[Entry]) -> list[Row]:
    """Entries of one task, best MAE first, each compared with the nearest comparable row above.

    A row without a finite MAE is never ranked (collect shows it as damaged instead).
    """
    ordered = sorted((e for e in entries if e.rankable), key=lambda e: (e.shown["mae"], e.label))
    rows = [Row(rank=i + 1, entry=e) for i, e in enumerate(ordered)]
    # Pair each measurable row with the nearest measurable row above it.
    pairs: list[tuple[Row, Row]] = []
    previous = None
    for row in rows:
        if not row.entry.has_items:
            continue
        if previous is not None:
            pairs.append((row, previous))
        previous = row
    _test_pairs(pairs)
    return rows


def _test_pairs(pairs: list[tuple["Row", "Row"]]) -> None:
    results = paired_tests([(row.entry, above.entry) for row, above in pairs])
    for (row, above), result in zip(pairs, results):
        if result is not None:
            row.versus_above, row.above_label = result, above.entry.label


def paired_tests(pairs: list[tuple[Entry, Entry]]) -> list[dict | None]:
    """Paired bootstrap of each (A, B) on their shared items (None when they share none).

    Pairs on identical item lists share the resampling draws and run as one batch.
    """
    results: list[dict | None] = [None] * len(pairs)
    batched = defaultdict(list)
    for k, (a, b) in enumerate(pairs):
        ia, ib = a.items, b.items
        if len(ia) == len(ib) and (ia["id"].to_numpy() == ib["id"].to_numpy()).all():
            batched[len(ia)].append(k)
            continue
        merged = ia[["id", "error"]].merge(ib[["id", "error"]], on="id", suffixes=("_a", "_b"))
        if len(merged):
            results[k] = paired_bootstrap(merged["error_a"], merged["error_b"])
    for group in batched.values():
        for k, result in zip(group, paired_bootstrap_many([(pairs[k][0].errors, pairs[k][1].errors)
                                                            for k in group])):
            results[k] = result
    return results


@dataclass
class Comparison:
    """Variants of one model that differ in a single axis (quantization, or prompt style)."""

    title: str
    axis: str
    model: str
    fixed: str
    variants: list[tuple[str, Entry]]
    tests: dict = field(default_factory=dict)    # variant -> paired bootstrap vs the first variant


def shots_of(e: Entry) -> tuple[tuple, str]:
    """(sort key, label) of the in-context examples a run was shown: zero-shot sorts first; a
    manifest whose `in_context` cannot be read is its own group, never merged with another."""
    from harness.retrieval import from_options

    value = e.manifest.in_context
    try:
        ic = from_options(value)
    except ValueError:
        return (1, 0, "?", str(value)), f"unreadable in-context setting ({str(value)[:40]})"
    return (int(ic.active), ic.shots, ic.selector, ic.describe()), ic.describe()


def comparisons(entries: list[Entry]) -> dict[str, list[Comparison]]:
    """The same model across quantization levels; with base vs chat prompts; with k in-context
    examples chosen at random or by a retriever, each against its zero-shot run."""
    measured = [e for e in entries if e.provenance == "measured"]
    out = {"quant": [], "prompt": [], "in_context": []}
    by_quant, by_prompt, by_shots = defaultdict(dict), defaultdict(dict), defaultdict(dict)
    for e in measured:
        key, shots = shots_of(e)
        by_quant[(e.model, e.prompt, shots)][e.quant] = e
        by_prompt[(e.model, e.quant, shots)][e.prompt] = e
        by_shots[(e.model, e.quant, e.prompt)][key] = e
    for (model, prompt, shots), variants in sorted(by_quant.items(), key=lambda kv: str(kv[0])):
        if len(variants) > 1:
            ordered = [(q, variants[q]) for q in QUANTS if q in variants]
            out["quant"].append(Comparison(f"{model}, {prompt} prompt{_unless_zero(shots)}", "quantization", model,
                                           f"prompt {prompt}", ordered))
    for (model, quant, shots), variants in sorted(by_prompt.items(), key=lambda kv: str(kv[0])):
        if len(variants) > 1:
            ordered = [(p, variants[p]) for p in ("base", "chat") if p in variants]
            out["prompt"].append(Comparison(f"{model}, quantization {quant}{_unless_zero(shots)}", "prompt style",
                                            model, f"quant {quant}", ordered))
    for (model, quant, prompt), variants in sorted(by_shots.items(), key=lambda kv: str(kv[0])):
        ordered = [(key[3], variants[key]) for key in sorted(variants)]
        if len(ordered) > 1 and ordered[0][0] == "zero-shot":
            out["in_context"].append(Comparison(f"{model}, {prompt} prompt, quantization {quant}",
                                                "in-context examples", model, f"prompt {prompt}", ordered))
    # Each variant against the group's first one (e.g. 8bit vs none), all tests in one batch.
    wanted = [(c, name, entry) for group in out.values() for c in group for name, entry in c.variants[1:]
              if entry.has_items and c.variants[0][1].has_items]
    results = paired_tests([(entry, c.variants[0][1]) for c, _, entry in wanted])
    for (c, name, _), result in zip(wanted, results):
        if result is not None:
            c.tests[name] = result
    return out


def _unless_zero(shots: str) -> str:
    return "" if shots == "zero-shot" else f", {shots}"
