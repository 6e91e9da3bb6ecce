"""Fine-tunes in a suite: the training jobs a leaderboard's `finetune:` models need, and their checkpoints.

A `finetune:<recipe>` model is evaluated only once its adapter exists, so a suite first runs one
training job per (recipe, base, overrides, task, adapter cache): `adapters.finetune`, cached by adapter id (a
finished adapter is a hit, a partial one resumes from its last checkpoint). Which checkpoints
exist is known only after training: the entry's `checkpoints` (all, or step numbers) becomes one
evaluation job per checkpoint (`-o checkpoint=N`), in step order, read from the adapter folder.
A training that fails fails its evaluation jobs with one line; every other job still runs.
"""
from __future__ import annotations

import dataclasses
import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from harness.suite.finetune_spec import is_finetune
from harness.suite.jobs import failure_reason, job_task
from harness.suite.leaderboard import Job


@dataclass(frozen=True)
class TrainJob:
    """Training one recipe on one task into one adapter cache (what `pricebench finetune` does)."""

    task: str                       # as in Job: a task name or path
    recipe: str                     # the target of finetune:<recipe>: a recipe name or an absolute path
    adapters: str | None = None     # the entry's `adapters` option (default: $PRICEBENCH_ADAPTERS)
    resources: tuple = ()           # the entry's resources (for Ray)
    base: str | None = None         # the `base` option: another base than the recipe's (a template has none)
    overrides: str | None = None    # the `overrides` option, as sorted JSON (hashable)

    @property
    def task_name(self) -> str:
        return Job(task=self.task, model="").task_name

    @property
    def recipe_name(self) -> str:
        return Path(self.recipe).stem if self.recipe.endswith((".yaml", ".yml")) else self.recipe

    @property
    def overrides_dict(self) -> dict:
        return json.loads(self.overrides) if self.overrides else {}

    def describe(self) -> str:
        base = f" on {self.base.removeprefix('hf:')}" if self.base else ""     # else the recipe's own
        tuned = "".join(f" {key}={json.dumps(value, sort_keys=True)}" for key, value in self.overrides_dict.items())
        return f"{self.task_name} | train {self.recipe_name}{base}{tuned}"

    def load_recipe(self):
        from harness.finetune.recipe import load_recipe

        return load_recipe(self.recipe, base=self.base, overrides=self.overrides_dict)


def training_of(job: Job) -> TrainJob | None:
    """The training a job's model needs first, if it is a fine-tune."""
    if not is_finetune(job.model):
        return None
    options = job.options_dict
    overrides = options.get("overrides")
    return TrainJob(task=job.task, recipe=job.model.split(":", 1)[1], adapters=options.get("adapters"),
                    resources=job.resources, base=options.get("base"),
                    overrides=json.dumps(overrides, sort_keys=True) if overrides else None)


def training_jobs(jobs) -> list[TrainJob]:
    """One training per distinct (recipe, base, overrides, task, adapter cache), in the order the jobs name them."""
    return list(dict.fromkeys(t for t in map(training_of, jobs) if t is not None))


def plan(train: TrainJob, data_dir=None, task_cache: dict | None = None):
    from harness.finetune.adapters import plan_adapter

    return plan_adapter(train.load_recipe(), job_task(Job(task=train.task, model=""), data_dir, task_cache),
                        adapters=train.adapters)


def training_status(train: TrainJob, *, data_dir=None, task_cache: dict | None = None) -> tuple[str, str, str | None]:
    """(trained | partial | to-train | unavailable, a detail, the adapter id): nothing is loaded or trained."""
    try:
        folder = plan(train, data_dir, task_cache).folder
    except Exception as e:  # noqa: BLE001 - a training that cannot even be planned is reported, not raised
        return "unavailable", failure_reason(e), None
    state, detail = folder.state()
    steps = folder.checkpoint_steps()
    if steps and state == "trained":
        detail += f"; checkpoints {', '.join(map(str, steps))}"
    return state, detail, folder.adapter_id


def execute_training(train: TrainJob, data_dir=None, progress=None, trainer=None) -> dict:
    """Train (or find) the adapter; never raises but for Ctrl-C (its checkpoints are kept: a rerun
    resumes). `trainer(plan, progress)`: where the training runs (default: here; the Ray executor
    passes one that trains on a worker); it returns what `adapters.finetune` returns."""
    t0 = time.perf_counter()
    try:
        if trainer is None:
            from harness.finetune.adapters import finetune

            task = job_task(Job(task=train.task, model=""), data_dir)
            result = finetune(train.load_recipe(), task, adapters=train.adapters, progress=progress)
        else:
            result = trainer(plan(train, data_dir), progress)
    except Exception as e:  # noqa: BLE001 - keep going; the suite lists failures at the end
        return {"ok": False, "error": failure_reason(e), "traceback": traceback.format_exc(limit=6),
                "seconds": round(time.perf_counter() - t0, 3)}
    from harness.finetune.adapters import AdapterFolder

    training = result.manifest.get("training") or {}
    return {"ok": True, "adapter_id": result.adapter_id, "path": str(result.path), "cached": result.cached,
            "steps": training.get("steps"), "tokens_per_s": training.get("tokens_per_s"),
            "checkpoints": AdapterFolder(result.path).checkpoint_steps(), "seconds": round(time.perf_counter() - t0, 3)}


def format_training(train: TrainJob, outcome: dict, number: int, total: int) -> str:
    head = f"[train {number}/{total}] {train.describe()}"
    if not outcome["ok"]:
        return f"{head}: FAILED ({outcome['error'].splitlines()[0]})"
    if outcome["cached"]:
        return f"{head}: cached, adapter {outcome['adapter_id']} ({outcome['steps']} steps)"
    speed = f" at {outcome['tokens_per_s']} tokens/s" if outcome.get("tokens_per_s") is not None else ""
    return (f"{head}: trained {outcome['steps']} steps{speed}, adapter {outcome['adapter_id']} "
            f"({outcome['seconds']:.1f}s)")


def checkpoint_jobs(job: Job, steps, final_step: int | None = None) -> list[Job]:
    """The job's checkpoint evaluations (`-o checkpoint=N`): for `checkpoints: all`, every one of `steps` (those
    the adapter holds) but the one at `final_step` (the final adapter's own weights, which the job itself
    evaluates); else the steps the entry lists (a missing one fails with its reason)."""
    if not job.checkpoints:
        return []
    if job.checkpoints == ("all",):
        wanted = sorted(step for step in steps if step != final_step)
    else:
        wanted = list(job.checkpoints)
    return [dataclasses.replace(job, checkpoints=(), options=tuple(sorted(
        {**dict(job.options), "checkpoint": json.dumps(step)}.items()))) for step in wanted]


def after_training(jobs: list[Job], trained: dict) -> tuple[list[Job], list[tuple[Job, dict]]]:
    """The evaluation jobs once the trainings are done: each fine-tune's final-adapter job followed by its
    checkpoint jobs; and the jobs of a failed training, each with its failed outcome (nothing to evaluate)."""
    ready, skipped = [], []
    for job in jobs:
        train = training_of(job)
        outcome = trained.get(train) if train else None
        if outcome is None:
            ready.append(job)
        elif not outcome["ok"]:
            line = outcome["error"].splitlines()[0]
            for each in [job, *checkpoint_jobs(job, [])]:
                skipped.append((each, {"ok": False, "skipped": True, "seconds": 0.0,
                                       "error": f"not evaluated: training {train.describe()} failed ({line})"}))
        else:
            ready += [job, *checkpoint_jobs(job, outcome["checkpoints"], outcome["steps"])]
    return ready, skipped


def with_checkpoints(jobs: list[Job], *, data_dir=None, task_cache: dict | None = None) -> list[Job]:
    """The jobs with each fine-tune's checkpoint jobs after it, from the adapters as they are now (for a
    report or a dry run: nothing is trained; an adapter not trained yet adds nothing)."""
    out = []
    for job in jobs:
        out.append(job)
        train = training_of(job)
        if train is None or not job.checkpoints:
            continue
        try:
            folder = plan(train, data_dir, task_cache).folder
        except Exception:  # noqa: BLE001 - the job's own status says why it cannot be planned
            continue
        final_step = ((folder.manifest() or {}).get("training") or {}).get("steps") if folder.is_complete() else None
        steps = folder.checkpoint_steps()
        out += checkpoint_jobs(job, steps, final_step) if steps else []
    return out


def board_with_checkpoints(board, *, data_dir=None):
    """The leaderboard with its fine-tunes' checkpoint jobs as the adapters hold them now: what a report,
    an export or a bundle of the leaderboard covers."""
    return dataclasses.replace(board, jobs=with_checkpoints(board.jobs, data_dir=data_dir))
