"""Leaderboards: a YAML spec -> a matrix of jobs -> an executor -> the store -> the report.

A leaderboard (leaderboards/*.yaml) names its tasks, the recorded reference runs to rank
against, and a model matrix (models x quantization levels x prompt styles). Every job is an
ordinary `harness.run`, so the store's content-hash cache makes a re-run of a suite skip
finished jobs and resume partial ones; a failing job never stops the others.
"""
from __future__ import annotations

import fnmatch
import itertools
import json
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import InputError
from harness.predictors.base import QUANTS
from harness.prompts import STYLES
from harness.yamlspec import Spec, load_spec

MODEL_KEYS = {"model", "quant", "prompt", "options", "tasks", "resources"}
TOP_KEYS = {"name", "title", "description", "tasks", "references", "models"}
RESOURCE_KEYS = {"num_cpus", "num_gpus", "memory"}


@dataclass(frozen=True)
class Job:
    """One run of the matrix: a model spec on one task, plus what it needs from an executor."""

    task: str                       # task name, or path to a task YAML
    model: str
    quant: str = "none"
    prompt: str | None = None
    options: tuple = ()             # sorted (key, json value) pairs: hashable
    resources: tuple = ()           # sorted (key, value) pairs for Ray
    reference: bool = False         # a reference row (recorded run) rather than a model under test

    @property
    def options_dict(self) -> dict:
        return {k: json.loads(v) for k, v in self.options}

    @property
    def resources_dict(self) -> dict:
        return dict(self.resources)

    @property
    def task_name(self) -> str:
        return Path(self.task).stem if self.task.endswith((".yaml", ".yml")) else self.task

    def describe(self) -> str:
        parts = [self.model]
        if self.quant != "none":
            parts.append(f"quant={self.quant}")
        if self.prompt:
            parts.append(f"prompt={self.prompt}")
        parts += [f"{k}={v}" for k, v in self.options]
        return f"{self.task_name} | {' '.join(parts)}"


@dataclass
class Leaderboard:
    name: str
    title: str
    description: str
    tasks: list[str]
    jobs: list[Job]
    path: Path | None = None


def _as_list(spec: Spec, value, *keys) -> list:
    if value is None:
        return [None]
    if isinstance(value, list):
        if not value:
            raise spec.error("must not be empty", *keys)
        return value
    return [value]


def _resolve_task(spec: Spec, value, *keys) -> str:
    if not isinstance(value, str) or not value:
        raise spec.error("must be a task name or a path to a task YAML", *keys)
    if value.endswith((".yaml", ".yml")):
        path = Path(value)
        if not path.is_absolute():
            path = (spec.path.parent / path).resolve()
        if not path.exists():
            raise spec.error(f"task file {path} not found", *keys)
        return str(path)
    from harness.tasks import task_files

    known = task_files()
    if value not in known:
        raise spec.error(f"unknown task {value!r} (known: {', '.join(known)})", *keys)
    return value


def _check_unknown(spec: Spec, node: dict, allowed: set, *keys) -> None:
    extra = sorted(set(node) - allowed)
    if extra:
        raise spec.error(f"unknown key (allowed: {', '.join(sorted(allowed))})", *keys, extra[0])


def load_leaderboard(path) -> Leaderboard:
    """Read and validate a leaderboard spec; errors name the file, line and field."""
    spec = load_spec(path)
    _check_unknown(spec, spec, TOP_KEYS)
    name = spec.require("name", kind=str)
    if not name or any(c in name for c in "/\\ ") or name.startswith("."):
        raise spec.error("must be a simple name (no spaces or slashes): it names the report folder", "name")
    task_refs = spec.require("tasks", kind=list)
    if not task_refs:
        raise spec.error("must list at least one task", "tasks")
    tasks = [_resolve_task(spec, t, "tasks", i) for i, t in enumerate(task_refs)]
    by_name = {Path(t).stem if t.endswith((".yaml", ".yml")) else t: t for t in tasks}
    jobs: list[Job] = []

    references = spec.get("references") or {}
    if not isinstance(references, dict):
        raise spec.error("must map a task to a list of recorded runs", "references")
    for task_key, runs in references.items():
        if task_key not in by_name:
            raise spec.error(f"task {task_key!r} is not in 'tasks'", "references", task_key)
        if not isinstance(runs, list):
            raise spec.error("must be a list of recorded run names", "references", task_key)
        for i, run in enumerate(runs):
            if not isinstance(run, str) or not run:
                raise spec.error("must be a run name such as 'human'", "references", task_key, i)
            jobs.append(Job(task=by_name[task_key], model=f"reference:{run}", reference=True))

    models = spec.get("models") or []
    if not isinstance(models, list):
        raise spec.error("must be a list of model entries", "models")
    for n, entry in enumerate(models):
        if isinstance(entry, str):
            entry = {"model": entry}
        if not isinstance(entry, dict):
            raise spec.error("must be a model name or a mapping with 'model'", "models", n)
        _check_unknown(spec, entry, MODEL_KEYS, "models", n)
        model = entry.get("model")
        if not isinstance(model, str) or ":" not in model:
            raise spec.error("must be 'backend:name', e.g. baseline:random or hf:gemma-3-270m",
                             "models", n, "model")
        quants = _as_list(spec, entry.get("quant", "none"), "models", n, "quant")
        for i, q in enumerate(quants):
            if q not in QUANTS:
                raise spec.error(f"must be one of {', '.join(QUANTS)}, got {q!r}", "models", n, "quant")
        prompts = _as_list(spec, entry.get("prompt"), "models", n, "prompt")
        for p in prompts:
            if p is not None and p not in STYLES:
                raise spec.error(f"must be one of {', '.join(STYLES)}, got {p!r}", "models", n, "prompt")
        options = entry.get("options") or {}
        if not isinstance(options, dict):
            raise spec.error("must be a mapping of backend options", "models", n, "options")
        resources = entry.get("resources") or {}
        if not isinstance(resources, dict):
            raise spec.error("must be a mapping (num_cpus, num_gpus, memory)", "models", n, "resources")
        _check_unknown(spec, resources, RESOURCE_KEYS, "models", n, "resources")
        for key, value in resources.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise spec.error("must be a non-negative number", "models", n, "resources", key)
        entry_tasks = entry.get("tasks")
        if entry_tasks is None:
            chosen = tasks
        else:
            if not isinstance(entry_tasks, list) or not entry_tasks:
                raise spec.error("must be a non-empty list of task names from 'tasks'", "models", n, "tasks")
            for i, t in enumerate(entry_tasks):
                if t not in by_name:
                    raise spec.error(f"task {t!r} is not in 'tasks'", "models", n, "tasks", i)
            chosen = [by_name[t] for t in entry_tasks]
        frozen_options = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in options.items()))
        for task, quant, prompt in itertools.product(chosen, quants, prompts):
            jobs.append(Job(task=task, model=model, quant=quant, prompt=prompt, options=frozen_options,
                            resources=tuple(sorted(resources.items()))))

    seen: set = set()
    unique = [j for j in jobs if not (j in seen or seen.add(j))]
    return Leaderboard(name=name, title=spec.get("title") or name, description=spec.get("description") or "",
                       tasks=tasks, jobs=unique, path=spec.path)


def select(jobs: list[Job], patterns: list[str] | None) -> list[Job]:
    """Jobs whose model name matches one of the glob patterns (all when none given)."""
    if not patterns:
        return list(jobs)
    return [j for j in jobs if any(fnmatch.fnmatchcase(j.model, p) for p in patterns)]


# --- where a job stands in the store --------------------------------------------------------

@dataclass
class JobStatus:
    """state: cached | partial | to-run | published | unavailable (the predictor cannot be built)."""

    job: Job
    state: str
    run_id: str | None = None
    done: int = 0
    total: int = 0
    detail: str = ""
    published_row: dict | None = field(default=None, repr=False)


def _task(job: Job, data_dir, cache: dict):
    from harness.tasks import load_task

    if job.task not in cache:
        cache[job.task] = load_task(job.task, data_dir=data_dir)
    return cache[job.task]


def job_status(job: Job, *, data_dir=None, store=None, task_cache: dict | None = None) -> JobStatus:
    """Where a job stands, computed from its identity alone: nothing is fitted, loaded or run."""
    from harness.predictors import ModelSpec, make_predictor
    from harness.runner import run_identity
    from harness.store import PredictionLog, RunStore

    task_cache = {} if task_cache is None else task_cache
    try:
        task = _task(job, data_dir, task_cache)
        spec = ModelSpec(name=job.model, quant=job.quant, prompt=job.prompt, options=job.options_dict)
        predictor = make_predictor(spec)
        try:
            published = getattr(predictor, "published", None)
            row = published(task) if published else None
            if row is not None:
                return JobStatus(job, "published", total=int(row.get("n", 250)), published_row=row,
                                 detail=f"published figure ({row.get('source') or 'task spec'})")
            _, rid = run_identity(task, spec, predictor)
        finally:
            predictor.close()
    except Exception as e:  # noqa: BLE001 - a job that cannot even be planned is reported, not raised
        return JobStatus(job, "unavailable", detail=_reason(e))
    folder = RunStore(store).path(rid)
    total = len(task.eval_items())
    if (folder / "metrics.json").exists():
        return JobStatus(job, "cached", rid, total, total)
    done = len(PredictionLog(folder / "predictions.jsonl").read()) if folder.exists() else 0
    if done:
        return JobStatus(job, "partial", rid, done, total, f"resumes at {done}/{total}")
    return JobStatus(job, "to-run", rid, 0, total)


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if not isinstance(e, InputError) else f"InputError: {e}"


# --- running the jobs -------------------------------------------------------------------------

_PROCESS_TASKS: dict = {}   # tasks loaded in this process (local run or Ray worker), by data dir


def execute_job(job: Job, data_dir=None, store=None) -> dict:
    """Run one job through harness.run; never raises: the outcome says what happened."""
    import time

    from harness.runner import run

    t0 = time.perf_counter()
    try:
        # Load (and validate, and hash) each task's items once per process, not once per job.
        task = _task(job, data_dir, _PROCESS_TASKS.setdefault(str(data_dir), {}))
        result = run(task, job.model, quant=job.quant, prompt=job.prompt, options=job.options_dict,
                     data_dir=data_dir, store=store, progress=False)
    except Exception as e:  # noqa: BLE001 - keep going; the suite lists failures at the end
        return {"ok": False, "error": _reason(e), "traceback": traceback.format_exc(limit=6),
                "seconds": round(time.perf_counter() - t0, 3)}
    return {"ok": True, "run_id": result.run_id, "cached": result.cached, "computed": result.computed,
            "published": result.published, "mae": result.metrics.get("mae"),
            "failed_items": result.metrics.get("failed", 0), "seconds": round(time.perf_counter() - t0, 3)}


@dataclass
class SuiteResult:
    outcomes: list[tuple[Job, dict]]

    @property
    def failures(self) -> list[tuple[Job, dict]]:
        return [(j, o) for j, o in self.outcomes if not o["ok"]]

    @property
    def computed(self) -> int:
        return sum(o.get("computed", 0) for _, o in self.outcomes if o["ok"])


def run_suite(board: Leaderboard, *, executor=None, data_dir=None, store=None, only=None, echo=print) -> SuiteResult:
    """Run every job of the matrix (cached ones return at once); collect failures, never stop."""
    from harness.executors import LocalExecutor

    executor = executor or LocalExecutor()
    jobs = select(board.jobs, only)
    outcomes = []
    for job, outcome in executor.map(jobs, data_dir=data_dir, store=store):
        outcomes.append((job, outcome))
        echo(format_outcome(job, outcome, len(outcomes), len(jobs)))
    return SuiteResult(outcomes)


def format_outcome(job: Job, outcome: dict, number: int, total: int) -> str:
    head = f"[{number}/{total}] {job.describe()}"
    if not outcome["ok"]:
        return f"{head}: FAILED ({outcome['error'].splitlines()[0]})"
    if outcome.get("published"):
        return f"{head}: published figure, MAE ${outcome['mae']:,.2f}"
    state = "cached" if outcome["cached"] else f"{outcome['computed']} items predicted"
    return f"{head}: {state}, MAE ${outcome['mae']:,.2f} ({outcome['run_id']}, {outcome['seconds']:.1f}s)"
