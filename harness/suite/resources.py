"""What a job or a training asks Ray for: the entry's `resources` (leaderboard.py checks them), else
1 CPU, plus 1 GPU when the job's backend says its options need one (`Predictor.needs_gpu`: hf and
vllm with device=cuda...) or the recipe trains on CUDA. `custom` resources become Ray's `resources`.
"""
from __future__ import annotations

from harness.errors import InputError
from harness.predictors import predictor_class


def job_resources(job) -> dict:
    """Ray resources of a job (actor options): its spec's `resources` (`custom` ones as Ray's
    `resources`), else 1 CPU, plus 1 GPU when its backend says these options need one
    (`Predictor.needs_gpu`: hf and vllm with device=cuda...)."""
    resources = {"num_cpus": 1, "num_gpus": 0}
    try:
        cls = predictor_class(job.model.split(":", 1)[0])
    except InputError:          # a missing extra: the job itself will say so
        cls = None
    if cls is not None and cls.needs_gpu(job.options_dict):
        resources["num_gpus"] = 1
    return with_asked(resources, job.resources)


def with_asked(resources: dict, asked: tuple) -> dict:
    """`resources` overridden by what a leaderboard entry asks (`custom` ones as Ray's `resources`)."""
    asked = dict(asked)
    custom = dict(asked.pop("custom", ()))
    resources = {**resources, **asked}
    if custom:
        resources["resources"] = custom
    return resources


def training_resources(train) -> dict:
    """Ray resources of a training: the entry's `resources`, else 1 CPU, plus 1 GPU for a CUDA recipe."""
    device = train.load_recipe().device
    return with_asked({"num_cpus": 1, "num_gpus": 1 if device.startswith("cuda") else 0}, train.resources)


def trains_remotely(resources: dict) -> bool:
    return resources.get("num_gpus", 0) > 0 or bool(resources.get("resources"))
