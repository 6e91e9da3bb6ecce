"""`pricebench verify RUN`: recompute a sample of a stored run's items from scratch and compare.

The audit a published leaderboard needs: the run's model is rebuilt from its manifest (same
task data and prompts, same model spec, checked against the run id), N stored items chosen at
random (seeded) are asked again, and the replies are compared exactly, with the MAE on those
items both ways. Options given with -o override the stored ones (e.g. another batch size):
then the environment differs on purpose and the report says how. The result is appended to
the manifest's `verifications`, which `show` and the report display.
"""
from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from harness.errors import InputError
from harness.predictors import ModelSpec, make_predictor
from harness.prompts import build_requests
from harness.retrieval import from_options
from harness.runs.record import VerificationRecord
from harness.runs.store import RunFolder
from harness.tasks import load_task


@dataclass
class Verification:
    run_id: str
    checked: int
    identical: int
    stored_mae: float
    recomputed_mae: float
    mismatches: list            # [{"id", "stored", "recomputed"}], at most 10
    environment_diff: dict      # {key: [stored, now]} of the reply-changing environment
    overrides: dict

    @property
    def agreement(self) -> float:
        return 100.0 * self.identical / self.checked if self.checked else 0.0

    def record(self) -> VerificationRecord:
        return VerificationRecord(at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                  checked=self.checked, identical=self.identical,
                                  agreement_pct=round(self.agreement, 2), stored_mae=float(self.stored_mae),
                                  recomputed_mae=float(self.recomputed_mae), environment_diff=self.environment_diff,
                                  overrides=self.overrides, mismatches=self.mismatches)


def _rebuild(folder: RunFolder, seen, *, task_ref=None, data_dir=None, overrides=None):
    """(task, predictor) as the run was made; refuses when the data, prompts or model changed."""
    from harness.runs.runner import run_identity

    manifest = seen.manifest
    identity = (manifest.identity if manifest else None) or {}
    model = identity.get("model")
    if not isinstance(model, dict) or not all(isinstance(model.get(k), str) for k in ("name", "quant")):
        raise InputError("the run's manifest has no identity to rebuild it from", path=folder.path / "manifest.json",
                         field="identity")
    task = load_task(task_ref or manifest.task, data_dir=data_dir, eval_slice=manifest.task_identity.get("eval_slice"))
    task = task.with_in_context(from_options(manifest.in_context))     # the examples it was shown
    if task.identity() != identity.get("task"):
        raise InputError(f"task {task.name}'s data or prompts differ from the ones run {seen.run_id} was made on "
                         f"(pass --task with the task file it used, or --data-dir with its data)", field="task")
    options = {**(manifest.options or {}), **(overrides or {})}
    predictor = make_predictor(ModelSpec(name=model["name"], quant=model["quant"], prompt=model.get("prompt"),
                                         options=options))
    _, rid = run_identity(task, predictor.spec, predictor)
    if rid != seen.run_id and not overrides:
        predictor.close()
        raise InputError(f"the model rebuilt from run {seen.run_id}'s manifest has id {rid}: its weights or "
                         f"settings changed since", field="model")
    return task, predictor


def verify(folder: RunFolder, *, items: int = 32, seed: int = 0, task_ref=None, data_dir=None,
           overrides: dict | None = None) -> Verification:
    from harness.runs.runner import make_record

    seen = folder.inspect()
    answered = sorted(i for i, r in seen.records.items() if not r.get("failure"))
    if not answered:
        raise InputError(f"run {seen.run_id} has no answered items to verify", path=folder.path, field="run")
    task, predictor = _rebuild(folder, seen, task_ref=task_ref, data_dir=data_dir, overrides=overrides)
    try:
        chosen = set(random.Random(seed).sample(answered, min(items, len(answered))))
        picked = [item for item in task.eval_items() if item.id in chosen]
        requests = build_requests(task, picked, predictor.prompt_style, reads_prompt=predictor.reads_prompt)
        predictor.prepare(task)
        now = {r.item.id: make_record(r, reply) for r, reply in predictor.predict(requests)}
        environment = predictor.reply_environment()
    finally:
        predictor.close()
    stored = {i: seen.records[i] for i in now}
    mismatches = [{"id": i, "stored": stored[i]["raw"], "recomputed": now[i]["raw"]}
                  for i in sorted(now) if now[i]["raw"] != stored[i]["raw"]]
    earlier = seen.manifest.answered_environments() if seen.manifest else []
    before = next((e for e in reversed(earlier) if e is not None), {}) or {}
    diff = {k: [before.get(k), environment.get(k)] for k in sorted(set(before) | set(environment))
            if before.get(k) != environment.get(k)}
    mean = lambda records: sum(r["error"] for r in records) / len(records)   # noqa: E731
    result = Verification(seen.run_id, len(now), len(now) - len(mismatches), mean(stored.values()),
                          mean(now.values()), mismatches[:10], diff, dict(overrides or {}))
    with folder.lock():
        latest = folder.inspect().manifest
        if latest is not None:
            latest.verifications = [*(latest.verifications or []), result.record()]
            folder.write_manifest(latest)
    return result
