"""Where a suite's jobs run: in this process (local) or on a Ray cluster (ray, see ray_executor.py).

Both yield (job, outcome) as jobs finish; an outcome never raises (see jobs.execute_job),
so one broken job cannot stop the others. Either way only this process writes the run store:
Ray workers predict and send their replies back, so the cluster needs no shared filesystem.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from harness.errors import InputError
from harness.progress import job_progress
from harness.suite.jobs import execute_job
from harness.suite.ray_executor import RayExecutor
from harness.suite.resources import job_resources
from harness.suite.training import execute_training

__all__ = ["LocalExecutor", "RayExecutor", "job_resources", "make_executor"]


def _absolute(data_dir, store) -> tuple[str | None, str]:
    """Pin both folders as absolute paths (the default ones come from the environment)."""
    from harness.runs.store import default_store_dir
    from harness.tasks import default_data_dir

    data_dir = data_dir or default_data_dir()
    return (str(Path(data_dir).resolve()) if data_dir else None,
            str(Path(store or default_store_dir()).resolve()))


class LocalExecutor:
    """One job after another in this process (the default: models load one at a time), each model
    job showing its progress on stderr (harness.progress) unless `progress_every` is None."""

    name = "local"

    def __init__(self, progress_every: float | None = 10.0):
        self.progress_every = progress_every

    def map(self, jobs, *, data_dir=None, store=None) -> Iterator[tuple]:
        data_dir, store = _absolute(data_dir, store)
        jobs = list(jobs)
        for number, job in enumerate(jobs, start=1):
            progress = False if self.progress_every is None else \
                job_progress(f"[{number}/{len(jobs)}] {job.describe()}", every=self.progress_every)
            yield job, execute_job(job, data_dir, store, progress=progress)

    def train(self, trainings, *, data_dir=None) -> Iterator[tuple]:
        """The trainings of the suite's fine-tunes, one after another, each showing its steps."""
        data_dir, _ = _absolute(data_dir, None)
        for number, train in enumerate(trainings, start=1):
            progress = False if self.progress_every is None else \
                job_progress(f"[train {number}/{len(trainings)}] {train.describe()}", every=self.progress_every,
                             unit="step")
            yield train, execute_training(train, data_dir, progress=progress)


def make_executor(name: str, address: str | None = None):
    if name == "local":
        if address:
            raise InputError("--address only applies to --executor ray", field="--address")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address)
    raise InputError(f"unknown executor {name!r} (known: local, ray)", field="--executor")
