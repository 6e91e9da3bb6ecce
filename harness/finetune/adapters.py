"""Trained adapters: identity, cache and manifest.

An adapter's id hashes what decides its weights: the base weights' fingerprint, the hash of
the train and validation pairs, and the normalized recipe (every field with its default; not
its name, description or device). It names a folder under $PRICEBENCH_ADAPTERS (default
<cache>/adapters, beside the fitted baselines and converted models):

    <id>/manifest.json     recipe, identity, data counts, versions, sessions, curve, tokens/s, memory
    <id>/checkpoints/      checkpoint-N (adapter + optimizer + scheduler + RNG): a kill resumes here
    <id>/final/            the trained adapter (or, for a full fine-tune, the whole model)

Same id = no retraining: a finished folder is a cache hit. The folder is locked (flock on the
folder itself) while a process trains it, so two trainings of one id never collide: the second
waits, then finds it finished. `final/` is written under a temporary name and renamed, and the
manifest says `complete` last.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.cache import cache_root, folder_lock
from harness.errors import InputError, Interrupted
from harness.finetune.layout import FINAL, MANIFEST, complete_checkpoints, last_checkpoint
from harness.jsonio import read_json, write_json_atomic
from harness.runs.store import run_id

ADAPTERS_ENV = "PRICEBENCH_ADAPTERS"
FORMAT = 1            # bump when training changes what the same recipe produces
TRAINING_LIBRARIES = ("pricebench", "torch", "transformers", "trl", "peft", "accelerate", "bitsandbytes", "datasets")


def adapters_dir(root=None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(ADAPTERS_ENV)
    return Path(env).expanduser() if env else cache_root() / "adapters"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def base_predictor(recipe):
    """The hf: predictor of the recipe's base (not loaded): where its weights are, their fingerprint."""
    from harness.predictors import ModelSpec, make_predictor

    return make_predictor(ModelSpec(recipe.base, quant=recipe.quant, prompt="base", options=dict(recipe.base_options)))


def adapter_identity(recipe, data, base_weights: str) -> dict:
    return {"format": FORMAT, "base": recipe.base, "base_weights": base_weights, "data": data.data_hash,
            "recipe": recipe.identity()}


def training_task(task):
    """The task as a training reads it: the train split is kept apart from the task's own evaluation
    slice, whatever slice `task` was loaded with; its prompts are the task's own (a run's --shots is
    not the recipe's `in_context`)."""
    if task.eval_slice_override is None and task.in_context_override is None:
        return task
    return dataclasses.replace(task, eval_slice_override=None, in_context_override=None, _cache={})


def locate_adapter(recipe, data, base_weights: str, adapters=None) -> tuple[dict, "AdapterFolder"]:
    """The adapter's identity and its folder in the cache: the one place its id is computed
    (training here, evaluating in predictor.py)."""
    identity = adapter_identity(recipe, data, base_weights)
    return identity, AdapterFolder(adapters_dir(adapters) / run_id(identity))


class TrainingInterrupted(Interrupted):
    """Ctrl-C or SIGTERM while training: the checkpoints are kept; the same command resumes."""

    def __init__(self, recipe_name: str, checkpoint: str | None, path: Path):
        self.saved, self.path = 0, path
        where = f"the last checkpoint is {checkpoint}" if checkpoint else "no checkpoint was saved yet"
        KeyboardInterrupt.__init__(self, f"interrupted: training of {recipe_name} stopped ({where}, in {path}); "
                                         f"run the same command again to resume")


@dataclass
class AdapterResult:
    adapter_id: str
    path: Path
    manifest: dict
    cached: bool

    @property
    def final(self) -> Path:
        return self.path / FINAL


class AdapterFolder:
    """One adapter's folder: reading its manifest, locking it, finishing it atomically."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def adapter_id(self) -> str:
        return self.path.name

    def manifest(self) -> dict | None:
        try:
            manifest = read_json(self.path / MANIFEST)
        except (OSError, ValueError, RecursionError):
            return None
        return manifest if isinstance(manifest, dict) else None

    def is_complete(self) -> bool:
        manifest = self.manifest()
        return bool(manifest and manifest.get("status") == "complete" and (self.path / FINAL).is_dir())

    def checkpoint_steps(self) -> list[int]:
        """Steps of the complete checkpoints, in order (in checkpoints/; a regression training keeps its
        own in final/checkpoints/, its manifest says which)."""
        inside = self.path / FINAL if (self.manifest() or {}).get("objective") == "regression" else self.path
        return [step for step, _ in complete_checkpoints(inside)]

    def state(self) -> tuple[str, str]:
        """(trained | partial | to-train, a detail) without locking: what a dry run shows."""
        if self.is_complete():
            steps = ((self.manifest() or {}).get("training") or {}).get("steps")
            return "trained", f"{steps} steps" if steps is not None else ""
        steps = self.checkpoint_steps()
        if steps:
            return "partial", f"resumes from checkpoint-{steps[-1]}"
        return "to-train", ""

    def lock(self, on_wait=None):
        self.path.mkdir(parents=True, exist_ok=True)
        return folder_lock(self.path, on_wait=on_wait, unsupported_ok=True)

    def write_manifest(self, manifest: dict) -> None:
        write_json_atomic(self.path / MANIFEST, {**manifest, "updated": _now()})

    def publish_final(self, staged: Path) -> None:
        """Move a fully written `staged` folder into place as final/ (a rename: never half-written)."""
        target = self.path / FINAL
        if target.exists():            # a finished folder from an earlier session that did not complete
            old = self.path / f".{FINAL}.old-{os.getpid()}"
            os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(staged, target)


@dataclass
class AdapterPlan:
    """What training `recipe` on a task means, computed without training: the data, the base, the folder."""

    recipe: object
    task: object
    data: object
    predictor: object
    identity: dict
    folder: AdapterFolder


def plan_adapter(recipe, task, *, adapters=None, max_steps: int | None = None) -> AdapterPlan:
    """The adapter `finetune` would train or find: its identity and folder (nothing is loaded or trained),
    trained on `training_task(task)`."""
    from harness.finetune.data import build_data

    if recipe.base is None:
        raise InputError(f"recipe {recipe.name} is a template (it names no base): give --base hf:<model> "
                         f"(a leaderboard: finetune: {{recipe, bases}})", path=recipe.path, field="base")
    task = training_task(task)
    recipe = recipe.with_max_steps(max_steps)
    data = build_data(task, recipe)
    predictor = base_predictor(recipe)
    identity, folder = locate_adapter(recipe, data, predictor.identity(task)["weights"], adapters)
    return AdapterPlan(recipe, task, data, predictor, identity, folder)


def finetune(recipe, task, *, adapters=None, max_steps: int | None = None, progress=None,
             resume: bool = True, callbacks=()) -> AdapterResult:
    """Train `recipe` on `task`'s train split (see plan_adapter), or return the cached adapter of the same id.
    `progress`: see callbacks.ProgressBar."""
    plan = plan_adapter(recipe, task, adapters=adapters, max_steps=max_steps)
    recipe, task, data, predictor, identity, folder = (plan.recipe, plan.task, plan.data, plan.predictor,
                                                       plan.identity, plan.folder)
    if folder.is_complete():
        return AdapterResult(folder.adapter_id, folder.path, folder.manifest(), cached=True)

    def waited():
        print(f"pricebench: waiting for another process training adapter {folder.adapter_id}", file=sys.stderr)

    with folder.lock(on_wait=waited):
        if folder.is_complete():
            return AdapterResult(folder.adapter_id, folder.path, folder.manifest(), cached=True)
        manifest = _start_manifest(folder, recipe, task, data, identity)
        session = {"started": _now()}
        try:
            summary = _train(recipe, predictor, data, folder, resume=resume, progress=progress, callbacks=callbacks)
        except KeyboardInterrupt:
            checkpoint = last_checkpoint(folder.path)
            _end(folder, manifest, session, "interrupted")
            raise TrainingInterrupted(recipe.name, checkpoint.name if checkpoint else None, folder.path) from None
        except BaseException:
            _end(folder, manifest, session, "crashed")
            raise
        session.update({k: summary[k] for k in ("steps", "resumed_from", "train_s", "tokens", "tokens_per_s")
                        if k in summary})
        manifest["training"] = summary
        manifest["versions"] = _versions()
        _end(folder, manifest, session, "complete")
    return AdapterResult(folder.adapter_id, folder.path, manifest, cached=False)


def _start_manifest(folder: AdapterFolder, recipe, task, data, identity) -> dict:
    earlier = folder.manifest() or {}
    manifest = {"adapter_id": folder.adapter_id, "status": "running", "recipe": asdict(recipe),
                "recipe_name": recipe.name, "recipe_file": recipe.path, "task": task.name,
                "base": recipe.base, "method": recipe.method, "objective": recipe.objective, "seed": recipe.seed,
                "identity": identity, "created": earlier.get("created") or _now(),
                "data": {"train": len(data.train), "validation": len(data.validation), "hash": data.data_hash,
                         "train_excluded": data.train_excluded,
                         "validation_ids": [p.item_id for p in data.validation]},
                "sessions": list(earlier.get("sessions") or [])}
    folder.write_manifest(manifest)
    return manifest


def _end(folder: AdapterFolder, manifest: dict, session: dict, status: str) -> None:
    session.update(finished=_now(), ended=status)
    manifest["sessions"].append(session)
    manifest["status"] = status
    try:
        folder.write_manifest(manifest)
    except (OSError, ValueError):
        if status == "complete":
            raise


def _train(recipe, predictor, data, folder: AdapterFolder, *, resume, progress, callbacks) -> dict:
    if recipe.objective == "regression":     # its own checkpoints and resume, in final/ (complete = manifest)
        return _train_regression(recipe, predictor, data, folder.path / FINAL, resume=resume, callbacks=callbacks)
    from harness.finetune.train import train_causal_lm

    staged = folder.path / f".{FINAL}.tmp-{os.getpid()}"
    shutil.rmtree(staged, ignore_errors=True)
    try:
        summary = train_causal_lm(recipe, source=predictor.source, data=data, out_dir=folder.path,
                                  final_dir=staged, resume=resume, progress=progress, callbacks=callbacks)
    except ValueError as e:         # peft: a target module the base does not have
        if "target modules" not in str(e).lower():
            raise
        raise InputError(" ".join(str(e).split())[:300], path=recipe.path, field="lora.target_modules") from None
    folder.publish_final(staged)
    return summary


def _train_regression(recipe, predictor, data, out_dir: Path, *, resume, callbacks) -> dict:
    try:
        from harness.finetune.regression import train_regression
    except ImportError as e:
        raise InputError(f"objective regression is not available in this install ({e})",
                         path=recipe.path, field="objective") from None
    if not Path(predictor.source).is_dir():
        raise InputError("objective regression needs a local model folder (a test-model alias, a .gguf or a "
                         "folder), not a hub name", path=recipe.path, field="base")
    return train_regression(
        model_dir=Path(predictor.source), train=data.texts_and_prices("train"),
        validation=data.texts_and_prices("validation"), out_dir=out_dir, lora=dict(recipe.lora),
        learning_rate=recipe.learning_rate, schedule=recipe.schedule, warmup_ratio=recipe.warmup_ratio,
        epochs=recipe.epochs, max_steps=recipe.max_steps, batch_size=recipe.batch_size, grad_accum=recipe.grad_accum,
        max_length=recipe.max_length, seed=recipe.seed, precision=recipe.resolved_precision,
        eval_every=recipe.eval_every, save_every=recipe.save_every, resume=resume, callbacks=list(callbacks),
        truncation_side="left" if recipe.in_context else "right")


def _versions() -> dict:
    """Python's, pricebench's and the training libraries' versions (the one lookup: harness/versions.py)."""
    from harness.versions import library_versions

    return library_versions(TRAINING_LIBRARIES, python=True)
