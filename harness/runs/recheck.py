"""A stored run's figures recomputed from its own predictions: what a run asserts is checked, not trusted.

A finished run's metrics.json is a function of its predictions.jsonl records (results.run_metrics,
the runner's own scoring), and each record's score a function of its guess and truth
(scoring.score_item). An imported bundle or a store's folder may say otherwise (edited, forged,
written by a broken tool), so `pricebench import` refuses such a run (bundles/runs.py) and a report
marks it damaged instead of printing the false figure (report/collect.py). Checked, because it is
cheap (no data, no model) and its answer is clear:

- every record: `parsed` says whether it holds a price, `guess` is that price (0 without one: the
  course's rule), and `error`, `sle` and `colour` are scoring.score_item(guess, truth);
- metrics.json: every field it holds equals the recomputation from the records in item order
  (numbers within 1e-9, relative or absolute; a field it lacks, as older stores' mse and r2, says
  nothing and is not required; fields the scoring does not write are not read by anyone, and ignored);
- (import only) the manifest of a finished run: n_items is the length of item_ids (bundles/runs.py),
  and status, usage, cost_usd and timings are what results.finished_fields derives from the records
  and sessions. A report shows a hand-edited manifest's odd cost or timings as it shows any
  unreadable field ("—"), so it does not check these.

Not checked, and why: each truth (it needs the task's data; a re-run compares it, and `pricebench
verify` re-asks a sample of items), the parse of the reply text (regression heads, baselines and
recorded runs give a price directly), and whether a reply is the model's (`pricebench verify`).
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from harness.runs.record import RunManifest
from harness.runs.results import finished_fields, run_metrics
from harness.runs.store import METRICS, MANIFEST, PREDICTIONS, Inspection
from harness.scoring import bootstrap_cis, colour, score_item

REL, ABS = 1e-9, 1e-9        # how far a stored number may be from its recomputation (float noise only)
FRAME_NUMBERS = ("truth", "guess", "error", "sle")
MANIFEST_FIELDS = ("status", "usage", "cost_usd", "timings")


@dataclass(frozen=True)
class Disagreement:
    """The first figure a run's files state otherwise than its recomputation."""

    file: str                   # manifest.json | predictions.jsonl | metrics.json
    field: str
    says: object
    gives: object
    item: str | None = None     # the record's item id (predictions.jsonl)

    @property
    def reason(self) -> str:
        """What is wrong, without the file and field (an InputError names those)."""
        item, source = (f"item {self.item}: ", "scoring its guess and truth gives") if self.item else ("", "its "
                                                                                                  "predictions give")
        return f"{item}says {_show(self.says)}, but {source} {_show(self.gives)} (edited, or not written by pricebench)"

    def describe(self, folder) -> str:
        """One line for a report row: the file (in `folder`), the field and what is wrong."""
        return f"{Path(folder) / self.file}: field '{self.field}': {self.reason}"


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return repr(value)


def _same(says, gives) -> bool:
    """Does a stored value state its recomputation? Numbers within REL/ABS (JSON writes a NaN as null)."""
    if isinstance(gives, bool) or isinstance(gives, str) or gives is None:
        return says == gives and type(says) is type(gives)
    if isinstance(gives, (int, float)):
        if isinstance(gives, float) and math.isnan(gives):
            return says is None or (isinstance(says, float) and math.isnan(says))
        if isinstance(says, bool) or not isinstance(says, (int, float)):
            return False
        if isinstance(gives, int):
            return says == gives
        return math.isclose(says, gives, rel_tol=REL, abs_tol=ABS)
    if isinstance(gives, (list, tuple)):
        return isinstance(says, list) and len(says) == len(gives) and all(map(_same, says, gives))
    if isinstance(gives, dict):
        return isinstance(says, dict) and set(says) == set(gives) and all(_same(says[k], v) for k, v in gives.items())
    return says == gives


def in_item_order(seen: Inspection) -> list[dict]:
    """A run's records in its manifest's item order (the order its metrics were computed in; the
    bootstrap CI depends on it), any record of no listed item last."""
    order = seen.manifest.item_ids if seen.manifest else None
    records = list(seen.records.values())
    if order is not None:
        rank = {item: n for n, item in enumerate(order)}
        records.sort(key=lambda r: rank.get(r["id"], len(rank)))
    return records


def record_disagreement(record: dict) -> Disagreement | None:
    """A record's score against scoring.score_item of its own guess and truth (records already
    passed store.record_problem: the numbers are finite, colour and parsed well formed)."""
    item = record["id"]
    if "price" in record:
        price = record["price"]
        if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float))):
            return Disagreement(PREDICTIONS, "price", price, "a number or null", item)
        if record["parsed"] != (price is not None):
            return Disagreement(PREDICTIONS, "parsed", record["parsed"], price is not None, item)
        expected = float(price) if price is not None else 0.0
        if not _same(record["guess"], expected):
            return Disagreement(PREDICTIONS, "guess", record["guess"], expected, item)
    scored = score_item(record["guess"], record["truth"])
    for name in ("error", "sle", "colour"):
        if not _same(record[name], scored[name]):
            return Disagreement(PREDICTIONS, name, record[name], scored[name], item)
    return None


def _frame(records: list[dict]) -> pd.DataFrame:
    """The columns results.run_metrics reads, built straight from the records (cheaper than
    records_frame's every column: a report rechecks 100,000 items)."""
    columns = {name: np.array([r[name] for r in records], dtype=float) for name in FRAME_NUMBERS}
    columns["colour"] = pd.Series([r["colour"] for r in records], dtype=object)
    columns["parsed"] = np.array([r["parsed"] for r in records], dtype=bool)
    columns["failure"] = pd.Series([r.get("failure") for r in records], dtype=object)
    return pd.DataFrame(columns, copy=False)


def _suspects(records: list[dict], frame: pd.DataFrame) -> np.ndarray:
    """Indices of records that may disagree with their score, found with numpy (100,000 records in
    about 0.05 s); record_disagreement, the exact check, then looks at these only."""
    g, t = frame["guess"].to_numpy(), frame["truth"].to_numpy()
    error = np.abs(g - t)
    sle = (np.log(np.maximum(g, 0.0) + 1) - np.log(t + 1)) ** 2
    bad = ~np.isclose(frame["error"].to_numpy(), error, rtol=REL, atol=ABS)
    bad |= ~np.isclose(frame["sle"].to_numpy(), sle, rtol=REL, atol=ABS)
    bad |= frame["colour"].to_numpy() != np.array([colour(e, u) for e, u in zip(error.tolist(), t.tolist())], object)
    prices = [r.get("price", r["guess"] if r["parsed"] else None) for r in records]    # no price field: nothing to check
    bad |= frame["parsed"].to_numpy() != np.array([p is not None for p in prices])
    bad |= g != np.array([p if isinstance(p, (int, float)) and not isinstance(p, bool) else 0.0 if p is None
                          else np.nan for p in prices], dtype=float)
    return np.flatnonzero(bad)


def _metrics_disagreement(stored: dict, computed: dict) -> Disagreement | None:
    for key, value in computed.items():
        if key in stored and not _same(stored[key], value):
            return Disagreement(METRICS, key, stored[key], value)
    return None


def _manifest_disagreement(manifest: RunManifest, records: list[dict], computed: dict) -> Disagreement | None:
    held, derived = manifest.as_json(), finished_fields(manifest, records, computed).as_json()
    for key in MANIFEST_FIELDS:
        says, gives = held.get(key), derived[key]
        if key == "timings" and isinstance(says, dict):    # an older manifest may hold fewer timings
            gives = {k: v for k, v in gives.items() if k in says}
        if key in held and not _same(says, gives):
            return Disagreement(MANIFEST, key, says, gives)
    return None


class Recheck:
    """Runs rechecked together: each run's records are checked as it is added (a report need not keep
    them), its metrics recomputed with the others' by `results` (the bootstrap CIs of runs of one
    length in one pass over their shared draws: 50 runs cost little more than one)."""

    def __init__(self, *, manifests: bool = False):
        self.manifests = manifests      # check a finished run's manifest figures too (import)
        self.found: dict = {}
        self.pending: dict = {}         # key -> (frame, stored metrics, manifest and records if checked)

    def add(self, key, seen: Inspection) -> None:
        records = in_item_order(seen)
        frame = _frame(records)
        wrong = next(filter(None, (record_disagreement(records[i]) for i in _suspects(records, frame))), None)
        if wrong is not None:
            self.found[key] = wrong
        elif seen.metrics is not None and records:
            extra = (seen.manifest, records) if self.manifests and seen.manifest is not None else None
            self.pending[key] = (frame, seen.metrics, extra)

    def results(self) -> dict:
        """{key: the first Disagreement} of every run added that has one."""
        by_length = defaultdict(list)
        for key, (frame, _, _) in self.pending.items():
            by_length[len(frame)].append(key)
        for keys in by_length.values():
            cis = bootstrap_cis([self.pending[key][0]["error"].to_numpy() for key in keys])
            for key, ci in zip(keys, cis):
                frame, stored, extra = self.pending.pop(key)
                computed = run_metrics(frame, ci)
                wrong = _metrics_disagreement(stored, computed)
                if wrong is None and extra is not None:
                    wrong = _manifest_disagreement(*extra, computed)
                if wrong is not None:
                    self.found[key] = wrong
        return dict(self.found)


def disagreement(seen: Inspection, *, manifests: bool = False) -> Disagreement | None:
    """The first figure one run's files state otherwise than its recomputation, or None."""
    check = Recheck(manifests=manifests)
    check.add(seen.run_id, seen)
    return check.results().get(seen.run_id)
