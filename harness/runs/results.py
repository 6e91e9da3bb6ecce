"""A run as the user sees it (RunResult): from a store folder, or a published figure.

`result_from` / `load_run` read a stored run without changing it (a partial or damaged one is
scored on the items it has, and says so); `published_result` is the one constructor of a
published figure, used by runs, suites and reports alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.errors import InputError
from harness.runs.record import RunManifest, Session, Timings
from harness.runs.store import Inspection, RunFolder
from harness.scoring import METRIC_BY_KEY, METRICS, SCORING_VERSION, metrics

# The figures a run's one-line summary adds after the MAE, where the task's headline metrics ask for them.
SUMMARY_METRICS = tuple(m for m in METRICS if m.headline and m.key != "mae")


@dataclass
class RunResult:
    """A finished run: metrics, manifest and the per-item DataFrame (`df`)."""

    run_id: str | None
    path: Path | None
    manifest: RunManifest
    metrics: dict
    df: pd.DataFrame = field(repr=False)
    cached: bool = False
    computed: int = 0                # items predicted by this invocation
    published: bool = False          # a published figure only: no per-item data
    state: str = "complete"          # complete | partial | damaged (see store.Inspection)
    notes: list = field(default_factory=list)   # what was repaired or is missing, for the user

    @property
    def failed_all(self) -> bool:
        """Every request failed (network, API): such a run is shown as failed, never ranked."""
        return bool(self.metrics.get("n")) and self.metrics.get("failed", 0) >= self.metrics["n"]

    @property
    def label(self) -> str:
        return self.manifest.display_name

    def summary(self) -> str:
        """One line: the MAE with its CI, the task's headline metrics and the parse failures, each
        named and written as the metric schema says (harness.scoring.METRICS)."""
        m, mae = self.metrics, METRIC_BY_KEY["mae"]
        ci = "" if self.published else f"  95% CI [{mae.show(m['mae_ci_low'])}, {mae.show(m['mae_ci_high'])}]"
        text = f"{self.label} on {self.manifest.task}: {mae.label} {mae.show(m['mae'])}{ci}"
        headline = self.manifest.task_identity.get("metrics") or ["rmsle", "hit_rate"]
        for metric in SUMMARY_METRICS:
            if metric.key in headline and m.get(metric.key) is not None:
                text += f"  {metric.label} {metric.show(m[metric.key])}"
        normal = m.get("mae_ci_normal")
        if "mse" in headline and isinstance(normal, list) and len(normal) == 2 and None not in normal:
            text += f"  normal 95% CI [{mae.show(normal[0])}, {mae.show(normal[1])}]"   # the 2025 evaluator's
        if self.state != "complete":
            total = self.manifest.n_items if self.manifest.n_items is not None else "?"
            text += f"  [{self.state.upper()}: {m['n']} of {total} items]"
        if not self.published:      # the rate, then its counts (requests that failed after every retry)
            failures = METRIC_BY_KEY["parse_failure_rate"]
            failed = f", {m['failed']} failed requests" if m.get("failed") else ""
            rate = failures.show(m.get("parse_failure_rate"))
            text += f"  {failures.label} {rate} ({m['parse_failures']}/{m['n']}{failed})"
        return text


def run_metrics(df: pd.DataFrame, mae_ci: tuple[float, float] | None = None) -> dict:
    """metrics.json of a run: the course's metrics of its per-item frame, and its failed requests."""
    m = metrics(df, mae_ci)
    m["failed"] = int(df["failure"].notna().sum())
    return m


def _seconds(session: Session, key: str) -> float:
    """A session's timing (0 where a hand-edited or imported manifest holds none)."""
    value = getattr(session, key)
    return value if value is not None and math.isfinite(value) else 0


def finished_fields(manifest: RunManifest, records: list[dict], m: dict) -> RunManifest:
    """What a finished run's manifest derives from its records, metrics `m` and sessions: status,
    usage, cost and timings, as a record holding those four (runner.finished writes them;
    harness/runs/recheck.py checks an imported run's)."""
    usage: dict = {}
    for record in records:
        spent = record.get("usage")
        for key, value in (spent.items() if isinstance(spent, dict) else ()):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                usage[key] = usage.get(key, 0) + value
    status = "failed" if m["failed"] >= m["n"] else "complete-with-failures" if m["failed"] else "complete"
    timings = {key: round(sum(_seconds(s, key) for s in manifest.sessions), 3) for key in ("prepare_s", "predict_s")}
    timings["items_per_s"] = round(len(records) / max(timings["predict_s"], 1e-9), 3)
    # built, not validated: a hand-edited session's huge timings may sum to infinity, written as null
    return RunManifest.model_construct(status=status, usage=usage, cost_usd=round(usage.get("cost_usd", 0.0), 6),
                                       timings=Timings.model_construct(**timings))


def records_frame(records: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(records)
    if "id" in df:
        df["id"] = df["id"].astype(str)
    return df


def result_from(seen: Inspection, *, cached: bool = True) -> RunResult:
    """A stored run as a result; a partial or damaged one is scored on the items it has."""
    order = seen.manifest.item_ids if seen.manifest else None
    records = list(seen.records.values())
    if order:
        rank = {item_id: n for n, item_id in enumerate(order)}
        records.sort(key=lambda r: rank.get(r["id"], len(rank)))
    df = records_frame(records)
    if seen.state == "complete":
        m = seen.metrics
    elif records:
        m = run_metrics(df)
    else:
        raise InputError(f"run {seen.run_id} holds no usable predictions ({seen.state}"
                         f"{': ' + seen.problems[0] if seen.problems else ''})", path=seen.folder, field="run")
    return RunResult(run_id=seen.run_id, path=seen.folder, manifest=seen.manifest or RunManifest(run_id=seen.run_id),
                     metrics=m, df=df, cached=cached, state=seen.state,
                     notes=[*seen.problems, *seen.manifest_problems])


def load_run(path) -> RunResult:
    """A stored run by folder (read only: a partial or damaged run is reported as such)."""
    folder = path if isinstance(path, RunFolder) else RunFolder(path)
    return result_from(folder.inspect())


def published_result(task_name: str, model: str, row: dict) -> RunResult:
    """The one constructor of a published figure (no per-item data): runs, suites and reports use it."""
    # a figure the source did not publish (the 2025 edition has no RMSLE or hits) stays None
    m = {"n": int(row.get("n", 250)), "mae": float(row["mae"]), "scoring_version": SCORING_VERSION,
         **{key: (float(row[key]) if row.get(key) is not None else None) for key in ("rmsle", "hit_rate", "mse", "r2")}}
    def text(key: str, default=None):      # a task file may give a number where a name belongs
        return default if row.get(key) in (None, "") else str(row[key])

    manifest = RunManifest(task=task_name, model=model, label=text("label", model), kind=text("kind", "reference"),
                           provenance="published", source=text("source"))
    return RunResult(run_id=None, path=None, manifest=manifest, metrics=m, df=pd.DataFrame(), published=True)
