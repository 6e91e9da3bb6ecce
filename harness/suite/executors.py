"""Where a suite's jobs run: in this process (local) or as Ray tasks on a cluster (ray).

Both yield (job, outcome) as jobs finish; an outcome never raises (see jobs.execute_job),
so one broken job cannot stop the others. Ray jobs write to the same run store as local
ones, so the store must be a path every worker sees (a shared filesystem on a real cluster).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from harness.errors import InputError
from harness.suite.jobs import execute_job


def _absolute(data_dir, store) -> tuple[str | None, str]:
    """Workers start elsewhere, with another environment: pin both folders as absolute paths."""
    from harness.store import default_store_dir
    from harness.tasks import default_data_dir

    data_dir = data_dir or default_data_dir()
    return (str(Path(data_dir).resolve()) if data_dir else None,
            str(Path(store or default_store_dir()).resolve()))


class LocalExecutor:
    """One job after another in this process (the default: models load one at a time)."""

    name = "local"

    def map(self, jobs, *, data_dir=None, store=None) -> Iterator[tuple]:
        data_dir, store = _absolute(data_dir, store)
        for job in jobs:
            yield job, execute_job(job, data_dir, store)


def job_resources(job) -> dict:
    """Ray resources of a job: its spec's `resources` (`custom` ones as Ray's `resources`), else
    1 CPU, plus 1 GPU when its backend says these options need one (`Predictor.needs_gpu`: hf and
    vllm with device=cuda...)."""
    from harness.predictors import predictor_class

    resources = {"num_cpus": 1, "num_gpus": 0}
    try:
        cls = predictor_class(job.model.split(":", 1)[0])
    except InputError:          # a missing extra: the job itself will say so
        cls = None
    if cls is not None and cls.needs_gpu(job.options_dict):
        resources["num_gpus"] = 1
    asked = job.resources_dict
    custom = dict(asked.pop("custom", ()))
    resources.update(asked)
    if custom:
        resources["resources"] = custom
    return resources


class RayExecutor:
    """Each job a Ray remote task with its own resources; results land in the shared store."""

    name = "ray"

    def __init__(self, address: str | None = None):
        self.address = address

    def map(self, jobs, *, data_dir=None, store=None) -> Iterator[tuple]:
        try:
            import ray
        except ModuleNotFoundError:
            raise InputError("the ray executor needs Ray: pip install 'pricebench[ray]'", field="--executor") from None
        data_dir, store = _absolute(data_dir, store)
        started_here = not ray.is_initialized()
        if started_here:
            try:
                ray.init(address=self.address, log_to_driver=False, include_dashboard=False)
            except ConnectionError as e:
                raise InputError(f"cannot reach the Ray cluster at {self.address!r}: {e}", field="--address") from None
        try:
            remote = ray.remote(max_retries=0)(execute_job)
            pending = {}
            for job in jobs:
                ref = remote.options(**job_resources(job), name=job.describe()[:120]).remote(job, data_dir, store)
                pending[ref] = job
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(done[0])
                try:
                    outcome = ray.get(done[0])
                except Exception as e:  # noqa: BLE001 - a worker that died is one failed job
                    outcome = {"ok": False, "error": f"Ray task failed: {type(e).__name__}: {e}"}
                yield job, outcome
        finally:
            if started_here:
                ray.shutdown()


def make_executor(name: str, address: str | None = None):
    if name == "local":
        if address:
            raise InputError("--address only applies to --executor ray", field="--address")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address)
    raise InputError(f"unknown executor {name!r} (known: local, ray)", field="--executor")
