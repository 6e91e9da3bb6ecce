"""What a task's leaderboard shows besides its rows: its metric columns and the chart above it.

The columns are metrics of the one schema (harness.scoring.METRICS: header, tooltip, direction,
format); the chart's colours and reference lines come from the kinds table (harness.kinds).
"""
from __future__ import annotations

from markupsafe import Markup

from harness.kinds import KIND_BY_KEY, KINDS, kind_colour
from harness.report.aggregate import Row
from harness.report.svg import Bar, RefLine, leaderboard_chart
from harness.scoring import METRIC_BY_KEY, Metric

# The metrics (harness.scoring.METRICS) each table shows, in order; the schema gives header, tooltip, format.
LEADERBOARD_COLUMNS = ("mae", "mse", "r2", "rmsle", "hit_rate", "parse_rate", "cost_usd", "items_per_s")
ONLY_WHEN_SHOWN = ("mse", "r2")     # columns only where a task asks for them (its headline metrics)
COMPARISON_COLUMNS = ("mae", "rmsle", "hit_rate")
RANKED_BY = METRIC_BY_KEY["mae"]


def leaderboard_columns(rows: list[Row]) -> list[Metric]:
    """The metric columns of one task's table: LEADERBOARD_COLUMNS, MSE/R² only where a row has them."""
    return [METRIC_BY_KEY[key] for key in LEADERBOARD_COLUMNS
            if key not in ONLY_WHEN_SHOWN or any(row.entry.shown[key] is not None for row in rows)]


def chart(rows: list[Row]) -> Markup:
    """The chart above a task's table: each ranked row's MAE and CI in its kind's colour, with lines at
    the human row and at the best frontier row (rows come best first)."""
    entries = [row.entry for row in rows]
    bars = [Bar(e.label, e.shown["mae"], RANKED_BY.show(e.shown["mae"]), e.shown["mae_ci_low"],
                e.shown["mae_ci_high"], kind_colour(e.kind), e.kind) for e in entries]
    lines = []
    for group, caption in (("human", "human"), ("frontier", "best frontier")):
        best = next((e for e in entries if e.reference_class == group), None)
        if best is not None:
            mae = best.shown["mae"]
            lines.append(RefLine(group, f"{caption} {RANKED_BY.show(mae)}", mae, best.label))
    present = list(dict.fromkeys(e.kind for e in entries))
    legend = [(k.label, k.colour) for k in KINDS if k.key in present]
    legend += [(kind, kind_colour(kind)) for kind in present if kind not in KIND_BY_KEY]    # as written, neutral
    return leaderboard_chart(bars, lines, legend, axis=f"{RANKED_BY.label}, 95% CI ({RANKED_BY.better})")
