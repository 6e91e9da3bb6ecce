"""Gather what a report shows: finished runs from the store, published rows, jobs not run yet.

Reads the store directly (manifest.json, metrics.json, predictions.jsonl) and keeps only the
per-item columns the pages need, so a report over many large runs builds in seconds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.store import RunStore, read_json

ITEM_COLUMNS = ("id", "title", "raw", "guess", "truth", "error", "colour", "parsed")
TEXT_COLUMNS = ("id", "title", "raw", "colour")
REFERENCE_KINDS = ("human", "frontier")     # reference rows the leaderboard highlights


@dataclass
class Entry:
    """One leaderboard row: a stored run (with per-item data) or a published figure (without)."""

    task: str
    label: str
    model: str
    kind: str
    provenance: str                 # measured | recorded | published
    metrics: dict
    manifest: dict = field(default_factory=dict)
    run_id: str | None = None
    quant: str = "none"
    prompt: str | None = None
    items: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def has_items(self) -> bool:
        return self.items is not None and len(self.items) > 0

    @property
    def reference_class(self) -> str | None:
        """'human' / 'frontier' for the rows every model is ranked against, else None."""
        for kind in REFERENCE_KINDS:
            if self.kind == kind or self.kind.startswith(kind + "-"):
                return kind
        return None

    @property
    def page(self) -> str | None:
        return f"runs/{self.run_id}.html" if self.has_items and self.run_id else None

    @property
    def ci(self) -> tuple[float, float] | None:
        m = self.metrics
        return (m["mae_ci_low"], m["mae_ci_high"]) if m.get("mae_ci_low") is not None else None

    @property
    def parse_rate(self) -> float | None:
        rate = self.metrics.get("parse_failure_rate")
        return None if rate is None else 100.0 - rate

    @property
    def cost_usd(self) -> float | None:
        return self.manifest.get("cost_usd") if self.provenance == "measured" else None

    @property
    def items_per_s(self) -> float | None:
        if self.provenance != "measured":      # replaying a recorded run says nothing about speed
            return None
        return (self.manifest.get("timings") or {}).get("items_per_s")

    @property
    def errors(self) -> np.ndarray:
        return self.items["error"].to_numpy(float)


@dataclass
class Missing:
    """A job of the leaderboard with no finished run yet (not run, partial, or failing)."""

    task: str
    description: str
    state: str
    detail: str = ""


def read_items_table(path: Path) -> pd.DataFrame:
    """predictions.jsonl -> the per-item columns a report shows (a torn last line is ignored).

    One json.loads over the whole file, and plain object columns for text: both matter when
    a report reads a hundred thousand items.
    """
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.endswith("\n") and line.strip()]
    records = json.loads("[" + ",".join(lines) + "]")
    columns = {}
    for name in ITEM_COLUMNS:
        values = [r.get(name) for r in records]
        if name in TEXT_COLUMNS:     # object dtype: pandas 3 would convert to (slower) arrow strings
            columns[name] = pd.Series(values, dtype=object)
        else:
            columns[name] = np.array(values, dtype=bool if name == "parsed" else float)
    df = pd.DataFrame(columns, copy=False)
    if df["id"].duplicated().any():
        df = df.drop_duplicates("id", keep="last").reset_index(drop=True)
    return df


def load_entry(folder: Path) -> Entry:
    """A finished run folder as a leaderboard entry."""
    folder = Path(folder)
    manifest = read_json(folder / "manifest.json")
    info = manifest.get("info") or {}
    return Entry(task=manifest.get("task", "?"), label=manifest.get("label") or manifest.get("model", folder.name),
                 model=manifest.get("model", "?"), kind=manifest.get("kind") or info.get("kind") or "model",
                 provenance="recorded" if info.get("provenance") == "recorded" else "measured",
                 metrics=read_json(folder / "metrics.json"), manifest=manifest, run_id=folder.name,
                 quant=manifest.get("quant", "none"), prompt=manifest.get("prompt_style"),
                 items=read_items_table(folder / "predictions.jsonl"))


def published_entry(task: str, model: str, row: dict) -> Entry:
    metrics = {"n": int(row.get("n", 250)), "mae": float(row["mae"]), "rmsle": float(row["rmsle"]),
               "hit_rate": float(row["hit_rate"])}
    return Entry(task=task, label=row.get("label") or model, model=model, kind=row.get("kind", "reference"),
                 provenance="published", metrics=metrics,
                 manifest={"task": task, "model": model, "source": row.get("source"), "provenance": "published"})


def entries_from_leaderboard(board, *, data_dir=None, store=None) -> tuple[list[Entry], list[Missing]]:
    """Each job of a leaderboard resolved against the store; nothing is run."""
    from harness.suite import job_status

    entries, missing, cache, seen = [], [], {}, set()
    store_obj = RunStore(store)
    for job in board.jobs:
        status = job_status(job, data_dir=data_dir, store=store, task_cache=cache)
        task = cache[job.task].name if job.task in cache else job.task_name
        if status.state == "cached":
            if status.run_id in seen:
                continue
            seen.add(status.run_id)
            entries.append(load_entry(store_obj.path(status.run_id)))
        elif status.state == "published":
            entries.append(published_entry(task, job.model, status.published_row))
        else:
            missing.append(Missing(task, job.describe(), status.state, status.detail))
    return entries, missing


def entries_from_store(store=None) -> list[Entry]:
    """Every finished run in a store."""
    return [load_entry(folder) for folder in RunStore(store).runs()]
