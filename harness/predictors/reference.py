"""`reference:<run>`: a recorded run (the human, GPT-4o, the course's Llama...) replayed as a run.

Per-item predictions live only in the offline data folder (references.jsonl). A user who
loads from the hub still gets the course's published figures from the task spec, marked
as published, without CI or drill-down.
"""
from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from pathlib import Path

from harness.data import BadNumber, strict_json
from harness.errors import InputError
from harness.jsonio import capped_lines
from harness.predictors.base import ModelSpec, Predictor, Reply
from harness.scoring import MAX_GUESS, parse_price

FIELDS = ("run", "label", "kind", "source", "item_ids", "predictions")


@lru_cache(maxsize=16)
def read_references(path: Path) -> dict[str, dict]:
    """Validate every recorded run: a NaN, Infinity or 1e308 guess would poison every metric."""
    runs = {}
    with open(path, "rb") as f:
        for number, obj, line in _records(f, path):
            _check_run(obj, path, number, line, runs)
    return runs


def _records(f, path: Path):
    """(line number, JSON object, line text) of each non-blank line, each read with the line cap."""
    for number, data in capped_lines(f, path, what="a recorded run"):
        try:
            line = data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as e:
            raise InputError(f"invalid UTF-8 at byte {e.start}", path=path, line=number) from None
        if not line.strip():
            continue
        obj = strict_json(line, path=path, line=number)
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=number)
        yield number, obj, line


def _check_run(obj: dict, path: Path, number: int, line: str, runs: dict) -> None:
    for name in FIELDS:
        if name not in obj:
            raise InputError("missing field", path=path, line=number, field=name)
    _check_record(obj, path, number)
    if obj["run"] in runs:
        raise InputError(f"run {obj['run']!r} recorded twice", path=path, line=number, field="run")
    obj["hash"] = hashlib.sha256(line.encode()).hexdigest()[:16]
    runs[obj["run"]] = obj


def _check_record(obj: dict, path: Path, number: int) -> None:
    for name in ("run", "label", "kind"):
        if not isinstance(obj[name], str) or not obj[name]:
            raise InputError("must be a non-empty string", path=path, line=number, field=name)
    ids, predictions = obj["item_ids"], obj["predictions"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InputError("must be a list of item ids", path=path, line=number, field="item_ids")
    if len(set(ids)) != len(ids):
        raise InputError("an item id is listed twice", path=path, line=number, field="item_ids")
    if not isinstance(predictions, list):
        raise InputError("must be a list of numbers", path=path, line=number, field="predictions")
    if len(ids) != len(predictions):
        raise InputError("item_ids and predictions differ in length", path=path, line=number, field="predictions")
    for i, p in enumerate(predictions):
        if isinstance(p, BadNumber):
            raise InputError(f"prediction for {ids[i]} is {p!r}: not a usable number", path=path, line=number,
                             field="predictions")
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise InputError(f"non-numeric prediction {p!r} (for {ids[i]})", path=path, line=number,
                             field="predictions")
        if not math.isfinite(p) or abs(p) > MAX_GUESS:
            raise InputError(f"prediction {p!r} for {ids[i]} is not finite or over {MAX_GUESS:.0e}", path=path,
                             line=number, field="predictions")
    raw = obj.get("raw")          # the typed answers (2025 human run): the predictions are their course parse
    if raw is None:
        return
    if not isinstance(raw, list) or len(raw) != len(ids) or not all(isinstance(r, str) for r in raw):
        raise InputError("must be a list of strings, one per item", path=path, line=number, field="raw")
    for i, reply in enumerate(raw):
        parsed = parse_price(reply)
        if (parsed if parsed is not None else 0.0) != predictions[i]:
            raise InputError(f"answer {reply!r} for {ids[i]} parses to {parsed} by the course's rule, but "
                             f"predictions say {predictions[i]}", path=path, line=number, field="raw")


class ReferencePredictor(Predictor):
    """Takes no model options, no --quant and no --prompt: each would only give the same recorded
    predictions a new run id. (The common runtime options are accepted and change nothing.)"""

    batch_size = 1000
    default_prompt = "base"
    quants = ("none",)
    quant_advice = "a recorded run has no quantization to choose; drop --quant"
    prompts = (None,)
    reads_prompt = False
    reads_task_files = True         # references.jsonl, beside the task's items
    prompt_advice = "a recorded run was not prompted by pricebench; drop --prompt"

    class Options(Predictor.Options):
        unknown_advice = "a recorded run takes no model options"

    def __init__(self, spec: ModelSpec):
        super().__init__(spec)
        self.run_name = spec.target
        self._record: dict | None = None

    def _recorded(self, task) -> dict | None:
        path = task.references_path
        if path is None:
            return None
        runs = read_references(path)
        if self.run_name not in runs:
            raise InputError(f"no recorded run {self.run_name!r} (known: {', '.join(runs)})", path=path,
                             field="run")
        return runs[self.run_name]

    def published(self, task) -> dict | None:
        """The course's published row, for when no per-item file is available (or it does not
        hold this run: the 2025 edition's models exist only as published figures)."""
        if task.references_path is not None and (self.run_name in read_references(task.references_path)
                                                 or self.run_name not in {r["run"] for r in task.published}):
            return None
        for row in task.published:
            if row["run"] == self.run_name:
                return {**row, "source": row.get("source", task.spec.get("published_source", ""))}
        known = ", ".join(r["run"] for r in task.published)
        raise InputError(f"no published run {self.run_name!r} for task {task.name} (known: {known})",
                         path=task.spec.path, field="published")

    def identity(self, task) -> dict:
        record = self._recorded(task)
        return {"references_hash": record["hash"]} if record else {}

    def prepare(self, task) -> None:
        record = self._recorded(task)
        self._record = record
        self._by_id = dict(zip(record["item_ids"], record["predictions"]))
        self.kind = record["kind"]
        missing = [item.id for item in task.eval_items() if item.id not in self._by_id]
        if missing:
            raise InputError(f"recorded run {self.run_name!r} has no prediction for {missing[0]} "
                             f"({len(missing)} items missing; it covers {len(self._by_id)} items: "
                             f"use the task's default slice)", path=task.references_path, field="item_ids")

    def label(self) -> str:
        return self._record["label"] if self._record else self.spec.name

    def predict_batch(self, requests):
        raw = dict(zip(self._record["item_ids"], self._record["raw"])) if self._record.get("raw") else {}
        return [Reply(raw=raw.get(r.item.id, f"{self._by_id[r.item.id]:.2f}"), price=float(self._by_id[r.item.id]))
                for r in requests]

    def run_info(self) -> dict:
        if not self._record:
            return {}
        return {"label": self._record["label"], "kind": self._record["kind"], "source": self._record["source"],
                "provenance": "recorded", "reported_mae": self._record.get("reported_mae")}


def create(spec: ModelSpec) -> Predictor:
    if not spec.target:
        raise InputError("reference needs a run name, e.g. reference:human", field="model")
    return ReferencePredictor(spec)


PREDICTOR = ReferencePredictor
