"""Leaderboard specs: a YAML file -> a validated matrix of jobs (models x quant x prompt x tasks).

A leaderboard (leaderboards/*.yaml) names its tasks, the recorded reference runs to rank
against, and a model matrix (models x quantization levels x prompt styles).
"""
from __future__ import annotations

import fnmatch
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from harness.predictors.base import QUANTS, ModelSpec
from harness.prompts import STYLES
from harness.suite.finetune_spec import checkpoints as checkpoints_of
from harness.suite.finetune_spec import is_finetune, resolve_finetune
from harness.suite.finetune_spec import variants as finetune_variants
from harness.errors import InputError
from harness.yamlspec import Spec, check_keys, check_name, did_you_mean, load_spec

SHOT_KEYS = ("shots", "shot_selector", "retriever", "shot_seed", "shot_format")   # in-context axes
MODEL_KEYS = {"model", "finetune", "quant", "prompt", "options", "tasks", "resources", "checkpoints", *SHOT_KEYS}
TOP_KEYS = {"name", "title", "description", "tasks", "references", "models"}
RESOURCE_KEYS = {"num_cpus", "num_gpus", "memory", "custom"}   # custom: {ray resource name: amount}


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
    in_context: tuple = ()          # sorted (key, value) in-context options (harness/retrieval); () = the task's
    checkpoints: tuple = ()         # a finetune: model's checkpoints to evaluate too: ("all",) or steps (training.py)

    @property
    def options_dict(self) -> dict:
        return {k: json.loads(v) for k, v in self.options}

    @property
    def model_spec(self) -> ModelSpec:
        """The model spec as given (validated, and scrubbed for storing, by the predictor it builds)."""
        return ModelSpec(name=self.model, quant=self.quant, prompt=self.prompt, options=self.options_dict)

    @property
    def in_context_dict(self) -> dict:
        return dict(self.in_context)

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
        if self.in_context:
            from harness.retrieval import from_options

            parts.append(from_options(self.in_context_dict).describe())
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
        raise spec.error(f"unknown task {value!r}{did_you_mean(value, known)} (known: {', '.join(known)})", *keys)
    return value


def _check_unknown(spec: Spec, node: dict, allowed: set, *keys) -> None:
    """An unknown key is a typo: refused, with a "did you mean"."""
    check_keys(spec, node, allowed, *keys)


def _amounts(spec: Spec, node, allowed: set | None, *keys) -> tuple:
    """A mapping of resource names to non-negative finite numbers, as sorted (name, amount) pairs."""
    if not isinstance(node, dict):
        raise spec.error("must be a mapping of resource names to amounts", *keys)
    if allowed is not None:
        _check_unknown(spec, node, allowed, *keys)
    for key, value in node.items():
        if not isinstance(key, str) or not key:
            raise spec.error("resource names must be non-empty strings", *keys)
        if key == "custom" and allowed is not None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            raise spec.error("must be a non-negative number", *keys, key)
    return tuple(sorted(node.items()))


def _resources(spec: Spec, node, *keys) -> tuple:
    """What one job asks Ray for: num_cpus, num_gpus, memory, and `custom` resources of the
    cluster's nodes (e.g. {big_gpu: 1}: only nodes started with that resource run the job)."""
    pairs = dict(_amounts(spec, node or {}, RESOURCE_KEYS, *keys))
    if "custom" in pairs:
        pairs["custom"] = _amounts(spec, pairs["custom"], None, *keys, "custom")
        for name, _ in pairs["custom"]:
            if name in ("CPU", "GPU", "memory", "object_store_memory"):
                raise spec.error(f"{name!r} is Ray's own resource: ask for it with num_cpus, num_gpus or memory",
                                 *keys, "custom", name)
    return tuple(pairs.items())


def load_leaderboard(path) -> Leaderboard:
    """Read and validate a leaderboard spec; errors name the file, line and field."""
    if not Path(path).exists():
        raise InputError("leaderboard file not found", path=path, field="leaderboard")
    spec = load_spec(path)
    _check_unknown(spec, spec, TOP_KEYS)
    name = check_name(spec, "name")  # it names the report folder
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
        models = _models(spec, entry, n)
        model = models[0][0]
        steps = checkpoints_of(spec, entry, model, "models", n)
        quants = _as_list(spec, entry.get("quant", "none"), "models", n, "quant")
        for i, q in enumerate(quants):
            if q not in QUANTS:
                raise spec.error(f"must be one of {', '.join(QUANTS)}, got {q!r}", "models", n, "quant")
        prompts = _as_list(spec, entry.get("prompt"), "models", n, "prompt")
        for p in prompts:
            if p is not None and p not in STYLES:
                raise spec.error(f"must be one of {', '.join(STYLES)}, got {p!r}", "models", n, "prompt")
        resources = _resources(spec, entry.get("resources"), "models", n, "resources")
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
        shots = _in_context_axes(spec, entry, n)
        for (model, options), task, quant, prompt, in_context in itertools.product(models, chosen, quants, prompts,
                                                                                  shots):
            frozen_options = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in options.items()))
            jobs.append(Job(task=task, model=model, quant=quant, prompt=prompt, options=frozen_options,
                            resources=resources, in_context=in_context, checkpoints=steps))

    seen: set = set()
    unique = [j for j in jobs if not (j in seen or seen.add(j))]
    return Leaderboard(name=name, title=spec.get("title") or name, description=spec.get("description") or "",
                       tasks=tasks, jobs=unique, path=spec.path)


def _models(spec: Spec, entry: dict, n: int) -> list[tuple[str, dict]]:
    """(model, options) of an entry: one, or one per base of a `finetune:` entry (finetune_spec.variants)."""
    if "finetune" in entry:
        return finetune_variants(spec, entry, n)
    model = entry.get("model")
    if not isinstance(model, str) or ":" not in model:
        raise spec.error("must be 'backend:name', e.g. baseline:random or hf:gemma-3-270m", "models", n, "model")
    options = entry.get("options") or {}
    if not isinstance(options, dict):
        raise spec.error("must be a mapping of backend options", "models", n, "options")
    if is_finetune(model):
        model = resolve_finetune(spec, model, "models", n, "model", base=options.get("base"),
                                 overrides=options.get("overrides"), base_at=("models", n, "options", "base"),
                                 overrides_at=("models", n, "options", "overrides"))[0]
    return [(model, options)]


def _in_context_axes(spec: Spec, entry: dict, n: int) -> list[tuple]:
    """The entry's in-context axes (shots x shot_selector x retriever x ...) as distinct settings:
    a combination that does not apply (a retriever for random shots, anything for 0 shots) folds
    into the one it means, so `shots: [0, 5]` x `retriever: [tfidf, bm25]` is 3 jobs, not 4."""
    from harness.retrieval.config import applicable, merge

    given = [key for key in SHOT_KEYS if key in entry]
    if not given:
        return [()]
    axes = [_as_list(spec, entry[key], "models", n, key) for key in given]
    settings = []
    for values in itertools.product(*axes):
        try:
            ic = merge(None, applicable(dict(zip(given, values))))
        except InputError as e:
            raise spec.error(e.reason, "models", n, e.field) from None
        settings.append(tuple(sorted((ic.as_options() or {"shots": 0}).items())))
    return list(dict.fromkeys(settings))


def select(jobs: list[Job], patterns: list[str] | None) -> list[Job]:
    """Jobs whose model name matches one of the glob patterns (all when none given)."""
    if not patterns:
        return list(jobs)
    return [j for j in jobs if any(fnmatch.fnmatchcase(j.model, p) for p in patterns)]
