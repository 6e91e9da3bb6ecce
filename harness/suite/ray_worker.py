"""The worker side of the Ray executor: one job's predictor in a Ray actor, fed through Ray.

The actor never sees the run store or a data folder. It gets the model spec and the task as
the driver loaded it (`ShippedTask`: the items travel with it), prepares the real predictor
(load, fit, connect: into the worker's own caches), and streams its replies back in batches.
All it holds is the batch not sent yet: that is what a lost worker costs.
"""
from __future__ import annotations

import socket
import time
from pathlib import Path

from harness.errors import InputError
from harness.tasks import Task


class ShippedTask(Task):
    """A task as the driver loaded it: its items (and its train split, when the run's identity
    read it) travel with it; nothing is read from a data folder on the worker."""

    @classmethod
    def of(cls, task: Task) -> "ShippedTask":
        shipped = cls(spec=task.spec, data_dir=task.data_dir, eval_slice_override=task.eval_slice_override,
                      strict=task.strict, in_context_override=task.in_context_override, _cache=dict(task._cache))
        for name in ("eval_hash", "train_hash"):        # computed on the driver: keep them
            if name in vars(task):
                vars(shipped)[name] = vars(task)[name]
        return shipped

    def _test_items(self):
        return self._cache["test"]

    def train_items(self):
        if "train" not in self._cache:
            raise InputError(f"task {self.name}: its train split was not sent to the Ray worker (the driver "
                             "sends it when the run's identity reads it, as a predictor that trains must: "
                             "put task.train_hash in Predictor.identity)", field="train")
        return self._cache["train"]

    @property
    def references_path(self):
        return None


class JobWorker:
    """A Ray actor (the executor wraps it with `ray.remote`, with the job's resources):
    prepare once, stream the replies of one session, report, close."""

    def __init__(self):
        self.predictor, self.where, self.adapter_dir = None, {}, None

    def prepare(self, spec, backend, task: ShippedTask, adapter: dict | None = None) -> dict:
        """Build the predictor as the driver did (`backend`: the driver's registry entry, so backends
        registered at run time work too) and prepare it; say what the runner records per session.
        `adapter`: a finetune: job's adapter, sent by the driver (harness/suite/ray_training.py)."""
        import tempfile

        import ray

        from harness.predictors import make_predictor, register_backend

        t0 = time.perf_counter()
        register_backend(spec.backend, backend)
        if adapter is not None:
            from harness.suite.ray_training import spec_on_worker, use_shipped_adapter

            self.adapter_dir = tempfile.TemporaryDirectory(prefix="pricebench-adapter-")
            spec = spec_on_worker(spec, adapter, Path(self.adapter_dir.name))
        self.predictor = make_predictor(spec)
        if adapter is not None:
            use_shipped_adapter(self.predictor, adapter, Path(self.adapter_dir.name))
        self.predictor.prepare(task)
        self.where = {"host": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
                      "prepare_s": round(time.perf_counter() - t0, 3)}    # the runner's prepare_s includes the queue
        return {"environment": self.predictor.environment(), "batch_size": self.predictor.batch_size,
                "reply_environment": self.predictor.reply_environment()}

    def predict(self, requests, every_items: int, every_s: float):
        """Yield [(item id, Reply), ...] every `every_items` replies or `every_s` seconds (a Ray
        streaming generator: each batch reaches the driver while the next is predicted)."""
        batch, sent = [], time.monotonic()
        for request, reply in self.predictor.predict(requests):
            batch.append((request.item.id, reply))
            if len(batch) >= every_items or time.monotonic() - sent >= every_s:
                yield batch
                batch, sent = [], time.monotonic()
        if batch:
            yield batch

    def report(self) -> dict:
        """What the runner writes into the manifest when the run finishes (and where it ran)."""
        return {"label": self.predictor.label(), "kind": self.predictor.kind,
                "run_info": {**self.predictor.run_info(), "ray_worker": self.where}}

    def close(self) -> None:
        if self.predictor is not None:
            self.predictor.close()
            self.predictor = None
        if self.adapter_dir is not None:
            self.adapter_dir.cleanup()
            self.adapter_dir = None
