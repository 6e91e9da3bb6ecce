"""The Base models page's answer, per task: what each row's MAE costs, and which base to use how.

- A cost-quality chart per cost (report/costs.py reads them): MAE against parameters and against
  training time (an open base's rows), against items/s (those and the API runs), against $ per
  1,000 items (API runs). The Pareto front (report/pareto.py; items/s is higher-is-better) is
  marked on the chart and listed in a table; a row that lacks the figure is left out, by name.
- A sentence per open base (the template words it): its best way of use (its lowest-MAE row) and whether that row is
  significantly better than the next base's best row (bases in order of best MAE; paired
  bootstrap on the items both runs hold, as everywhere in the report).
The front is drawn on MAE point estimates; the whiskers show how sure each one is.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

from harness.report.aggregate import paired_tests
from harness.report.collect import Entry
from harness.report.costs import Costs, read_costs
from harness.report.pareto import HIGHER, LOWER, pareto_front
from harness.report.selection import BaseGroup, Way, base_groups
from harness.report.svg import Dot, tradeoff_chart

LOG_SPAN = 10               # a log axis once the largest cost is 10x the smallest (all above 0)


def _count(v: float) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if v >= size:
            return f"{v / size:,.3g}{unit}"
    return f"{v:,.0f}"


def _speed(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 else f"{v:.2g}"


def _dollars(v: float) -> str:
    if v < 1:
        return f"${v:.2g}"
    return f"${v:,.0f}" if v == int(v) else f"${v:,.2f}"


@dataclass(frozen=True)
class Axis:
    key: str                    # a Costs field
    title: str
    label: str                  # the x axis' words
    column: str                 # the front table's heading
    better: str                 # LOWER | HIGHER
    rows: str                   # which rows it applies to: "open" | "all" | "api"
    tick: object                # value -> tick text
    show: object                # value -> table text

    def applies(self, point: "Point") -> bool:
        return {"all": True, "open": point.base is not None, "api": point.costs.api}[self.rows]


AXES = (
    Axis("parameters", "MAE against parameters", "parameters", "Parameters", LOWER, "open", _count,
         lambda v: f"{v:,.0f}"),
    Axis("train_s", "MAE against training time", "training time (s; untrained: 0)", "Training time", LOWER, "open",
         lambda v: f"{v:,.0f}", lambda v: f"{v:,.1f} s"),
    Axis("items_per_s", "MAE against speed", "items/s (higher is better; on the machine that ran it)", "Items/s",
         HIGHER, "all", _speed, lambda v: f"{v:,.3g}"),
    Axis("usd_per_1000", "MAE against price", "$ per 1,000 items (API runs)", "$ / 1,000 items", LOWER, "api",
         _dollars, lambda v: f"${v:,.4f}"),
)


@dataclass
class Point:
    """A row on the charts: an open base's way of use, or an API run."""

    entry: Entry
    costs: Costs
    label: str                  # the words of tables and tooltips
    base: str | None = None     # None: an API run
    way: str | None = None


@dataclass
class Chart:
    axis: Axis
    svg: Markup | None          # None: fewer than two points
    front: list[tuple[Point, float]] = field(default_factory=list)   # best cost first
    left_out: list[str] = field(default_factory=list)                 # applicable rows without the figure
    points: int = 0

    @property
    def shown(self) -> bool:
        """Worth a figure: some row has the figure, or lacks it and should be named."""
        return bool(self.points or self.left_out)


@dataclass
class Verdict:
    """A base's best row and its paired test against the next base's best row (the page words it)."""

    base: str
    best: Way
    next_base: str | None = None            # None: the last (or only) base
    next_best: Way | None = None
    test: dict | None = None                # None with a next base: the two runs share no item

    @property
    def words(self) -> str:
        better = self.test["better"] if self.test else None
        return {"A": "significantly better than", "B": "significantly worse than"}.get(better,
                                                                                       "not significantly better than")

    @property
    def shared(self) -> int | None:
        """How many items the test used, when fewer than either run holds (None: all of them)."""
        n = self.test["n"] if self.test else None
        return None if n is None or n == len(self.best.entry.items) == len(self.next_best.entry.items) else n


@dataclass
class Tradeoffs:
    charts: list[Chart]
    verdicts: list[Verdict]


def tradeoffs(entries: list[Entry]) -> Tradeoffs:
    """The charts and sentences of one task's entries (measured runs with per-item data only)."""
    groups = base_groups(entries)
    points = [Point(r.entry, r.costs, f"{g.base} · {r.way}: {r.setting}", g.base, r.way)
              for g in groups for r in g.rows]
    points += [Point(e, costs, e.label) for e in entries
               if e.provenance == "measured" and e.has_items and (costs := read_costs(e)).api]
    return Tradeoffs([_chart(axis, points) for axis in AXES], verdicts(groups))


def _chart(axis: Axis, points: list[Point]) -> Chart:
    usable = [p for p in points if axis.applies(p)]
    left_out = [p.label for p in usable if getattr(p.costs, axis.key) is None]
    usable = [p for p in usable if getattr(p.costs, axis.key) is not None]
    xs = [getattr(p.costs, axis.key) for p in usable]
    on_front = pareto_front([p.entry.shown["mae"] for p in usable], xs, better=axis.better)
    sign = 1 if axis.better == LOWER else -1
    front = sorted(((usable[i], xs[i]) for i in on_front), key=lambda px: (sign * px[1], px[0].entry.shown["mae"]))
    chart = Chart(axis, None, front, left_out, len(usable))
    if len(usable) < 2:
        return chart
    log = min(xs) > 0 and max(xs) >= LOG_SPAN * min(xs)
    marked = {id(p): str(k + 1) for k, (p, _) in enumerate(front)}

    def dot(p: Point, x: float) -> Dot:
        s = p.entry.shown
        return Dot(x, s["mae"], s["mae_ci_low"], s["mae_ci_high"], p.label, axis.show(x), id(p) in marked,
                   marked.get(id(p), ""))

    dots = [dot(p, x) for p, x in zip(usable, xs) if id(p) not in marked] + [dot(p, x) for p, x in front]
    chart.svg = tradeoff_chart(dots, axis=axis.label + (" (log scale)" if log else ""), tick=axis.tick, log=log)
    return chart


# --- a sentence per base ------------------------------------------------------------------------
def _best(g: BaseGroup) -> Way:
    return min(g.rows, key=lambda r: r.entry.shown["mae"])       # rows are in WAYS order: ties go to the simpler


def verdicts(groups: list[BaseGroup]) -> list[Verdict]:
    """Per base, best first: its best way of use, tested against the next base's best row."""
    ranked = sorted(((_best(g), g) for g in groups), key=lambda bg: (bg[0].entry.shown["mae"], bg[1].base))
    tests = paired_tests([(a.entry, b.entry) for (a, _), (b, _) in zip(ranked, ranked[1:])])
    out = [Verdict(g.base, best) for best, g in ranked]
    for verdict, (best, g), test in zip(out, ranked[1:], tests):
        verdict.next_base, verdict.next_best, verdict.test = g.base, best, test
    return out
