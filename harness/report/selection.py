"""Base-model selection: each open base model on a task, used every way the store measured it.

Per base (an `hf:` model; a `finetune:` run counts under its recipe's base, from the training
record its manifest carries), one row per way of using it: zero-shot (by prompt and
quantization), few-shot (k in-context examples and their selector), fine-tuned (by recipe and
checkpoint). Each row has its MAE and CI, a paired bootstrap against the base's reference
zero-shot run (the full-precision one with the lowest MAE, else the lowest-MAE zero-shot run),
its parameter count, training time and items/s. Only measured runs take part.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from harness.predictors.base import QUANTS
from harness.report.aggregate import paired_tests, shots_of
from harness.report.collect import Entry
from harness.report.costs import Costs, read_costs
from harness.report.training import Training, read_training

WAYS = ("zero-shot", "few-shot", "fine-tuned")


@dataclass
class Way:
    """One row: how the base was used, the run that measured it, and what it cost."""

    way: str                                # one of WAYS
    setting: str
    entry: Entry
    costs: Costs = field(default_factory=Costs)
    training: Training | None = None
    test: dict | None = None                # paired bootstrap vs the reference zero-shot run

    @property
    def parameters(self) -> int | None:
        return self.costs.parameters

    @property
    def train_s(self) -> float | None:
        return self.training.train_s if self.training else None


@dataclass
class BaseGroup:
    task: str
    base: str
    rows: list[Way] = field(default_factory=list)
    reference: Way | None = None


def base_of(e: Entry) -> tuple[str, Training | None] | None:
    """(the base model spec, the training record) of a run, or None when it is not an open base's run."""
    training = read_training(e.manifest)
    if training is not None and training.base:
        return training.base, training
    if e.model.startswith("hf:"):
        return e.model, None
    return None


def way_of(e: Entry, training: Training | None) -> tuple[str, str]:
    """(way, the setting's words) of a run."""
    key, shots = shots_of(e)
    prompt = f"{e.prompt or '?'} prompt, {e.quant}"
    if training is not None or e.kind == "open-finetuned":
        recipe = (training.recipe if training else None) or e.label
        checkpoint = f" checkpoint {training.checkpoint}" if training and training.checkpoint else ""
        extra = "" if shots == "zero-shot" else f", {shots}"
        return "fine-tuned", f"{recipe}{checkpoint} ({prompt}{extra})"
    if shots != "zero-shot":
        return "few-shot", f"{shots} ({prompt})"
    return "zero-shot", prompt


def _order(row: Way) -> tuple:
    quant = QUANTS.index(row.entry.quant) if row.entry.quant in QUANTS else len(QUANTS)
    return WAYS.index(row.way), row.setting, quant, row.entry.run_id or ""


def _reference(rows: list[Way]) -> Way | None:
    zero = [r for r in rows if r.way == "zero-shot"]
    full = [r for r in zero if r.entry.quant == "none"] or zero
    return min(full, key=lambda r: (r.entry.shown["mae"], r.entry.run_id or "")) if full else None


def base_groups(entries: list[Entry]) -> list[BaseGroup]:
    """Every open base of one task's measured runs, by name, its rows in WAYS order (no tests)."""
    groups: dict[str, BaseGroup] = {}
    for e in entries:
        if e.provenance != "measured" or not e.has_items:
            continue
        found = base_of(e)
        if found is None:
            continue
        base, training = found
        way, setting = way_of(e, training)
        row = Way(way, setting, e, read_costs(e, base, training), training)
        groups.setdefault(base, BaseGroup(e.task, base)).rows.append(row)
    out = [g for _, g in sorted(groups.items())]
    for g in out:
        g.rows.sort(key=_order)
    return out


def base_selection(entries: list[Entry]) -> list[BaseGroup]:
    """The groups of one task's entries (a base with one row only is left out: nothing to choose)."""
    out = [g for g in base_groups(entries) if len(g.rows) > 1]
    wanted = []
    for g in out:
        g.reference = _reference(g.rows)
        wanted += [(row, g.reference) for row in g.rows if g.reference is not None and row is not g.reference]
    for (row, _), result in zip(wanted, paired_tests([(row.entry, ref.entry) for row, ref in wanted])):
        row.test = result
    return out


def selections(entries: list[Entry]) -> dict[str, list[BaseGroup]]:
    """base_selection per task."""
    by_task = defaultdict(list)
    for e in entries:
        by_task[e.task].append(e)
    return {task: base_selection(rows) for task, rows in by_task.items()}
