"""Run one predictor on one task: the only place that ties the data path together.

items -> requests (prompts) -> predictor replies -> parsed prices -> per-item scores
-> predictions.jsonl (resumable) -> metrics.json. Same identity = same folder = no recompute.
"""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from harness.predictors import ModelSpec, make_predictor
from harness.prompts import build_requests
from harness.scoring import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, SCORING_VERSION, metrics, parse_price, score_item
from harness.store import PredictionLog, RunStore, read_json, run_id, write_json_atomic
from harness.tasks import Task, load_task

TRACKED_PACKAGES = ("numpy", "pandas", "torch", "transformers", "peft", "bitsandbytes", "accelerate", "vllm",
                    "openai", "anthropic", "sklearn", "gensim", "lm_eval", "sentence_transformers")
DIST_NAMES = {"sklearn": "scikit-learn", "lm_eval": "lm-eval"}


@dataclass
class RunResult:
    """A finished run: metrics, manifest and the per-item DataFrame (`df`)."""

    run_id: str | None
    path: Path | None
    manifest: dict
    metrics: dict
    df: pd.DataFrame = field(repr=False)
    cached: bool = False
    computed: int = 0                # items predicted by this invocation
    published: bool = False          # a published figure only: no per-item data

    @property
    def label(self) -> str:
        return self.manifest.get("label") or self.manifest.get("model", "")

    def summary(self) -> str:
        m = self.metrics
        ci = "" if self.published else f"  95% CI [${m['mae_ci_low']:,.2f}, ${m['mae_ci_high']:,.2f}]"
        text = (f"{self.label} on {self.manifest.get('task')}: MAE ${m['mae']:,.2f}{ci}  RMSLE {m['rmsle']:.2f}"
                f"  hits {m['hit_rate']:.1f}%")
        if not self.published:
            text += f"  parse failures {m['parse_failures']}/{m['n']}"
            if m.get("failed"):
                text += f"  failed requests {m['failed']}"
        return text


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for module in ("harness",) + TRACKED_PACKAGES:
        if module == "harness" or module in sys.modules:
            dist = {"harness": "pricebench"}.get(module, DIST_NAMES.get(module, module))
            try:
                versions[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                pass
    return versions


def _hardware() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "cpus": os.cpu_count()}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def make_record(request, reply) -> dict:
    """One predictions.jsonl line: reply, parsed price and the course's per-item score."""
    truth = request.item.price
    price = reply.price if reply.price is not None else parse_price(reply.raw)
    guess = price if price is not None else 0.0      # the course: no number = a guess of 0
    return {"id": request.item.id, "title": request.item.title, "prompt_hash": request.prompt_hash, "raw": reply.raw, "price": price,
            "guess": guess, "truth": truth, **score_item(guess, truth), "parsed": price is not None,
            "failure": reply.error, "usage": reply.usage or {}, "latency_s": reply.latency_s}


def _metrics(df: pd.DataFrame) -> dict:
    m = metrics(df)
    m["failed"] = int(df["failure"].notna().sum())
    return m


def load_run(path) -> RunResult:
    """A stored run by folder."""
    path = Path(path)
    manifest = read_json(path / "manifest.json")
    df = pd.read_json(path / "predictions.jsonl", lines=True, dtype={"id": str})
    return RunResult(run_id=path.name, path=path, manifest=manifest, metrics=read_json(path / "metrics.json"),
                     df=df, cached=True)


def _published_result(task: Task, spec: ModelSpec, row: dict) -> RunResult:
    m = {"n": 250, "mae": float(row["mae"]), "rmsle": float(row["rmsle"]), "hit_rate": float(row["hit_rate"]),
         "scoring_version": SCORING_VERSION}
    manifest = {"task": task.name, "model": spec.name, "label": row.get("label", spec.name),
                "kind": row.get("kind", "reference"), "provenance": "published", "source": row.get("source")}
    return RunResult(run_id=None, path=None, manifest=manifest, metrics=m, df=pd.DataFrame(), published=True)


def run(task, model: str, *, quant: str = "none", prompt: str | None = None, options: dict | None = None,
        eval_slice: str | None = None, data_dir=None, store=None, progress: bool | None = None) -> RunResult:
    """Run `model` (e.g. 'reference:human', 'hf:<checkpoint>') on `task`; reuse the stored run if any.

    A finished run is returned from the store untouched; a partial one continues where it
    stopped; items whose request failed are asked again.
    """
    task = task if isinstance(task, Task) else load_task(task, data_dir=data_dir, eval_slice=eval_slice)
    spec = ModelSpec(name=model, quant=quant, prompt=prompt, options=dict(options or {}))
    predictor = make_predictor(spec)
    try:
        published = getattr(predictor, "published", None)
        row = published(task) if published else None
        if row is not None:
            return _published_result(task, spec, row)
        return _run(task, spec, predictor, RunStore(store), progress)
    finally:
        predictor.close()


def run_identity(task: Task, spec: ModelSpec, predictor) -> tuple[dict, str]:
    """The identity of a run and its id (its store folder's name), without running anything."""
    identity = {"task": task.identity(), "model": spec.identity(), "predictor": predictor.identity(task),
                "prompt_style": predictor.prompt_style, "scoring": SCORING_VERSION}
    return identity, run_id(identity)


def _run(task: Task, spec: ModelSpec, predictor, store: RunStore, progress) -> RunResult:
    items = task.eval_items()
    requests = build_requests(task, items, predictor.prompt_style)
    identity, rid = run_identity(task, spec, predictor)
    folder = store.path(rid)
    log = PredictionLog(folder / "predictions.jsonl")
    done = log.read()
    todo = [r for r in requests if r.item.id not in done or done[r.item.id].get("failure")]
    if not todo and (folder / "metrics.json").exists():
        return load_run(folder)

    # Load / fit / connect before the first write: a predictor that cannot start leaves no folder.
    prepare_s = 0.0
    if todo:
        t0 = time.perf_counter()
        predictor.prepare(task)
        prepare_s = round(time.perf_counter() - t0, 3)
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / "manifest.json"
    manifest = read_json(manifest_path) if manifest_path.exists() else {
        "run_id": rid, "task": task.name, "model": spec.name, "quant": spec.quant, "prompt_style":
        predictor.prompt_style, "options": spec.options, "identity": identity, "n_items": len(items),
        "scoring_version": SCORING_VERSION, "bootstrap": {"samples": BOOTSTRAP_SAMPLES, "seed": BOOTSTRAP_SEED},
        "data_source": str(task.data_dir) if task.is_local else "hub", "created": _now(), "sessions": []}
    manifest.update(status="running", updated=_now())
    write_json_atomic(manifest_path, manifest)

    session = {"started": _now(), "items": len(todo), "resumed_from": len(done)}
    computed = 0
    if todo:
        session["prepare_s"] = prepare_s
        t1, last_flush, buffer = time.perf_counter(), time.perf_counter(), []
        bar = tqdm(total=len(todo), desc=f"{spec.name} | {task.name}", unit="item",
                   disable=None if progress is None else not progress, leave=False)
        try:
            for request, reply in predictor.predict(todo):
                record = make_record(request, reply)
                buffer.append(record)
                done[record["id"]] = record
                computed += 1
                bar.update(1)
                if len(buffer) >= predictor.batch_size or time.perf_counter() - last_flush > 1.0:
                    log.append(buffer)
                    buffer, last_flush = [], time.perf_counter()
        finally:
            if buffer:
                log.append(buffer)
            log.close()
            bar.close()
        session["predict_s"] = round(time.perf_counter() - t1, 3)
        session["items_per_s"] = round(computed / max(session["predict_s"], 1e-9), 3)
    session["finished"] = _now()

    records = [done[item.id] for item in items]
    log.rewrite(records)
    df = pd.DataFrame.from_records(records)
    m = _metrics(df)
    usage: dict = {}
    for record in records:
        for key, value in (record.get("usage") or {}).items():
            if isinstance(value, (int, float)):
                usage[key] = usage.get(key, 0) + value
    manifest.update(
        status="complete" if not m["failed"] else "complete-with-failures", updated=_now(),
        label=predictor.label(), kind=predictor.kind, versions=_versions(), hardware=_hardware(),
        usage=usage, cost_usd=round(usage.get("cost_usd", 0.0), 6), info={**manifest.get("info", {}),
                                                                          **predictor.run_info()})
    manifest["sessions"].append(session)
    manifest["timings"] = {
        "prepare_s": round(sum(s.get("prepare_s", 0) for s in manifest["sessions"]), 3),
        "predict_s": round(sum(s.get("predict_s", 0) for s in manifest["sessions"]), 3)}
    manifest["timings"]["items_per_s"] = round(len(items) / max(manifest["timings"]["predict_s"], 1e-9), 3)
    write_json_atomic(manifest_path, manifest)
    write_json_atomic(folder / "metrics.json", m)
    return RunResult(run_id=rid, path=folder, manifest=manifest, metrics=m, df=df, cached=False, computed=computed)
