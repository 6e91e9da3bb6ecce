"""Gather what a report shows: finished runs from the store, published rows, and what is not ranked.

Runs are read only through the store's own reader (`RunFolder.inspect`), which never modifies
a folder and never raises on damage. A complete run becomes an `Entry` (ranked); a failed
(every request failed), partial, damaged or empty folder becomes a `Missing` row that says
so, naming the file and line: one bad folder never stops a report. A complete run's figures are
recomputed from its own predictions (harness/runs/recheck.py, all runs in one pass): one whose metrics.json
or scores say otherwise is marked damaged, never shown with the false figure. Published figures come
from `results.published_result`, the one constructor of a published row.

`displayed_fields(entry)` derives, once, every figure a row shows: the HTML pages and
leaderboard.csv both read it, so they cannot disagree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from harness.kinds import reference_group
from harness.runs.recheck import Recheck
from harness.report.categories import with_categories
from harness.report.names import name_problem
from harness.report.stores import job_status_across, readable_stores, runs_across
from harness.runs.record import RunManifest
from harness.runs.results import RunResult, published_result
from harness.runs.store import Inspection
from harness.scoring import METRICS

ITEM_COLUMNS = ("id", "title", "category", "raw", "guess", "truth", "error", "colour", "parsed")
TEXT_COLUMNS = ("id", "title", "category", "raw", "colour")
UNRANKED_STATES = ("failed", "damaged", "partial", "empty")    # store states shown, never ranked
# (and "conflict": two stores hold different contents under one run id, report/stores.py)


def _text(value: str | None, default: str = "") -> str:
    """A manifest text, or `default` where it has none."""
    return value if value else default


def _number(value) -> float | None:
    """A finite number, or None (a missing, textual, boolean or non-finite value is not shown as one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:               # an integer past any float (a hand-edited manifest)
        return None
    return value if math.isfinite(value) else None


@dataclass
class Entry:
    """One leaderboard row: a stored run (with per-item data) or a published figure (without)."""

    task: str
    label: str
    model: str
    kind: str
    provenance: str                 # measured | recorded | published
    metrics: dict
    manifest: RunManifest = field(default_factory=RunManifest)
    run_id: str | None = None
    quant: str = "none"
    prompt: str | None = None
    items: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def has_items(self) -> bool:
        return self.items is not None and len(self.items) > 0

    @property
    def reference_class(self) -> str | None:
        """'human' / 'frontier' for the rows every model is ranked against (harness/kinds.py), else None."""
        return reference_group(self.kind)

    @property
    def page(self) -> str | None:
        return f"runs/{self.run_id}.html" if self.has_items and self.run_id else None

    @cached_property
    def shown(self) -> dict:
        """The displayed fields (see `displayed_fields`), computed once per entry."""
        return displayed_fields(self)

    @property
    def rankable(self) -> bool:
        """Only a row with a finite MAE, RMSLE and hit rate is ranked (a published figure: its MAE;
        the 2025 edition published no RMSLE or hits)."""
        s = self.shown
        if self.provenance == "published":
            return s["mae"] is not None
        return s["mae"] is not None and s["rmsle"] is not None and s["hit_rate"] is not None

    @property
    def ci(self) -> tuple[float, float] | None:
        s = self.shown
        return (s["mae_ci_low"], s["mae_ci_high"]) if s["mae_ci_low"] is not None else None

    @property
    def parse_rate(self) -> float | None:
        return self.shown["parse_rate"]

    @property
    def cost_usd(self) -> float | None:
        return self.shown["cost_usd"]

    @property
    def items_per_s(self) -> float | None:
        return self.shown["items_per_s"]

    @property
    def errors(self) -> np.ndarray:
        return self.items["error"].to_numpy(float)


def displayed_fields(e: Entry) -> dict:
    """Every figure a row shows, derived once for the HTML and leaderboard.csv alike.

    A number is shown only when it is finite (None: shown as "—", an empty CSV cell). Cost and
    items/s belong to measured runs only: replaying a recorded run says nothing about speed or
    price, and a published figure has neither.
    """
    m, man = e.metrics, e.manifest
    from_metrics = [key for metric in METRICS if metric.source == "metrics" for key in (metric.key, *(metric.ci or ()))]
    shown = {name: _number(m.get(name)) for name in ("n", "green", "orange", "red", "parse_failures", "failed",
                                                     *from_metrics)}
    if shown["mae_ci_low"] is None or shown["mae_ci_high"] is None:
        shown["mae_ci_low"] = shown["mae_ci_high"] = None
    for name in ("n", "green", "orange", "red", "parse_failures", "failed"):
        if shown[name] is not None:
            shown[name] = int(shown[name])
    failure_rate = _number(m.get("parse_failure_rate"))
    shown["parse_rate"] = None if failure_rate is None else 100.0 - failure_rate
    measured = e.provenance == "measured"
    shown["cost_usd"] = _number(man.cost_usd) if measured else None
    shown["items_per_s"] = _number(man.timings.items_per_s if man.timings else None) if measured else None
    last = man.verifications[-1] if man.verifications else None
    shown["verified_pct"] = _number(last.agreement_pct) if last else None
    shown["verified"] = (f"{last.identical}/{last.checked} replies identical on re-run "
                         f"({last.at})") if last else None
    shown["mixed"] = bool(man.mixed)
    # MSE and R2: only where the run's task chose them as headline metrics (the 2025 edition)
    headline = man.task_identity.get("metrics") or []
    headline = headline if isinstance(headline, list) else []
    for name in ("mse", "r2"):
        shown[name] = _number(m.get(name)) if name in headline else None
    return shown


@dataclass
class Missing:
    """A row that is not ranked: a job not run yet, or a run that failed, is partial or damaged."""

    task: str | None                # None: a run folder whose task cannot be read
    description: str
    state: str                      # failed | damaged | partial | empty | to-run | unavailable | ...
    detail: str = ""
    run_id: str | None = None


def items_table(records) -> pd.DataFrame:
    """Usable predictions records (already checked by the store's reader) -> the columns a report shows.

    Plain object columns for text: pandas 3 would convert to (slower) arrow strings, which
    matters when a report reads a hundred thousand items.
    """
    records = list(records)
    columns = {"shots": pd.Series([_shot_ids(r.get("shots")) for r in records], dtype=object)}
    for name in ITEM_COLUMNS:
        values = [r.get(name) for r in records]
        if name in TEXT_COLUMNS:
            columns[name] = pd.Series(values, dtype=object)
        else:
            columns[name] = np.array(values, dtype=bool if name == "parsed" else float)
    return pd.DataFrame(columns, copy=False)


def _shot_ids(value) -> list[str] | None:
    """The ids of the in-context examples an item was shown (None: none, or not a list of names)."""
    if not isinstance(value, list) or not value:
        return None
    return [str(v)[:80] for v in value[:64]]


def _failed_all(manifest: RunManifest, metrics: dict) -> bool:
    """Every request failed: the runner's own definition (RunResult.failed_all)."""
    return RunResult(run_id=None, path=None, manifest=manifest, metrics=metrics, df=None).failed_all


def _first_failure(records: dict) -> str:
    for record in records.values():
        if record.get("failure"):
            return " ".join(str(record["failure"]).split())[:160]
    return "?"


def _describe(seen: Inspection) -> str:
    label = seen.manifest.display_name if seen.manifest else ""
    return f"{label} (run {seen.run_id})" if label else f"run {seen.run_id}"


def from_inspection(seen: Inspection, task: str | None = None) -> Entry | Missing:
    """A run folder as a ranked entry (complete) or a marked, unranked row (anything else)."""
    man = seen.manifest or RunManifest()
    if task is None and seen.manifest is not None:
        problem = name_problem(man.task)
        if problem:         # a hand-edited manifest: shown, never joined to a path
            return Missing(None, _describe(seen), "damaged", f"{seen.folder / 'manifest.json'}: field 'task' "
                           f"{problem}, not a task name", seen.run_id)
        task = man.task
    if seen.state != "complete":
        total = man.n_items if man.n_items is not None else "?"
        detail = {"partial": f"unfinished: {len(seen.records)} of {total} items "
                             f"(a re-run of the same command completes it)",
                  "empty": f"{seen.folder}: holds no run (no manifest.json, no predictions)"}.get(seen.state, "")
        if seen.problems:
            more = f" (+{len(seen.problems) - 1} more)" if len(seen.problems) > 1 else ""
            detail = f"{seen.problems[0]}{more}"
        return Missing(task, _describe(seen), seen.state, detail, seen.run_id)
    metrics = seen.metrics
    if _failed_all(man, metrics):
        return Missing(task, _describe(seen), "failed", f"all {metrics['n']} requests failed (first: "
                       f"{_first_failure(seen.records)}); a re-run asks again", seen.run_id)
    info = man.run_info
    info_kind = info.get("kind") if isinstance(info.get("kind"), str) else None
    entry = Entry(task=task or "?", label=_text(man.label) or _text(man.model, seen.run_id),
                  model=_text(man.model, "?"), kind=_text(man.kind) or _text(info_kind, "model"),
                  provenance="recorded" if info.get("provenance") == "recorded" else "measured",
                  metrics=metrics, manifest=man, run_id=seen.run_id, quant=_text(man.quant, "none"),
                  prompt=_text(man.prompt_style) or None, items=items_table(seen.records.values()))
    if not entry.rankable:
        return Missing(task, _describe(seen), "damaged", f"{seen.folder}: metrics.json holds no finite MAE",
                       seen.run_id)
    return entry


def entry_from_result(result: RunResult, task: str) -> Entry:
    """A published figure (results.published_result) as a leaderboard row: no per-item data."""
    man, metrics = result.manifest, result.metrics
    return Entry(task=task, label=man.display_name, model=_text(man.model), kind=_text(man.kind, "reference"),
                 provenance="published", metrics=metrics, manifest=man)


def split_unrankable(entries: list[Entry]) -> tuple[list[Entry], list[Missing]]:
    """Rows without a finite MAE (e.g. a published figure of NaN) are shown as damaged, never ranked."""
    keep, marked = [], []
    for e in entries:
        if e.rankable:
            keep.append(e)
        else:
            where = f"run {e.run_id}" if e.run_id else "published figure"
            marked.append(Missing(e.task, f"{e.label} ({where})", "damaged", "MAE, RMSLE or hit rate is not a finite "
                                  "number", e.run_id))
    return keep, marked


def entries_from_leaderboard(board, *, data_dir=None, store=None) -> tuple[list[Entry], list[Missing]]:
    """Each job of a leaderboard resolved against the store (or stores: report/stores.py); nothing is run."""
    entries, missing, cache, seen, stores, check, where = [], [], {}, set(), readable_stores(store), Recheck(), {}
    for job in board.jobs:
        status = job_status_across(job, stores, data_dir=data_dir, task_cache=cache)
        task = cache[job.task].name if job.task in cache else job.task_name
        if status.state == "cached":
            if status.run_id in seen:
                continue
            seen.add(status.run_id)
            row = from_inspection(status.inspection, task)     # read once, by job_status
            if isinstance(row, Missing):        # e.g. a non-finite figure: marked, not ranked
                row.description = job.describe()
                missing.append(row)
            else:
                entries.append(with_categories(row, cache.get(job.task)))
                check.add(row.run_id, status.inspection)
                where[row.run_id] = (status.inspection.folder, job.describe())
        elif status.state == "published":
            entries.append(entry_from_result(published_result(task, job.model, status.published_row), task))
        else:
            missing.append(Missing(task, job.describe(), status.state, status.detail, status.run_id))
    entries, contradicted = _contradicted(entries, check, where)
    entries += _published_only(board, cache)
    entries, unrankable = split_unrankable(entries)
    return entries, missing + contradicted + unrankable


def _published_only(board, tasks: dict) -> list[Entry]:
    """A task's published figures that neither a job of the board nor the per-item file holds (the
    2025 edition's models, measured on 200 items we do not have): published rows, never replayed."""
    from harness.predictors.reference import read_references

    rows = []
    for key, task in tasks.items():
        asked = {j.model.split(":", 1)[1] for j in board.jobs if j.task == key and j.reference}
        recorded = set(read_references(task.references_path)) if task.references_path else set()
        for row in task.published:
            if row["run"] not in asked | recorded:
                row = {**row, "source": row.get("source", task.spec.get("published_source", ""))}
                rows.append(entry_from_result(published_result(task.name, f"reference:{row['run']}", row), task.name))
    return rows


def entries_from_store(store=None) -> tuple[list[Entry], list[Missing]]:
    """Every run folder of a store (or of several: report/stores.py): complete runs ranked, every
    other folder marked (never ranked)."""
    entries, missing, check, where = [], [], Recheck(), {}
    for rid, seen, conflict in runs_across(readable_stores(store)):
        row = from_inspection(seen)
        if conflict is not None:
            row = Missing(row.task, _describe(seen), "conflict", conflict.reason, rid)
        (missing if isinstance(row, Missing) else entries).append(row)
        if isinstance(row, Entry):
            check.add(rid, seen)
            where[rid] = (seen.folder, _describe(seen))
    entries, contradicted = _contradicted(entries, check, where)
    entries, unrankable = split_unrankable(entries)
    return entries, missing + contradicted + unrankable


def _contradicted(entries: list[Entry], check: Recheck, where: dict) -> tuple[list[Entry], list[Missing]]:
    """Ranked runs whose stored metrics.json or predictions their own predictions contradict
    (harness/runs/recheck.py: recomputed together): shown damaged, never with the false figure."""
    wrong = check.results()
    marked = [Missing(e.task, where[e.run_id][1], "damaged", wrong[e.run_id].describe(where[e.run_id][0]), e.run_id)
              for e in entries if e.run_id in wrong]
    return [e for e in entries if e.run_id not in wrong], marked
