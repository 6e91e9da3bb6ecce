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

from harness.suite.shipped import ShippedTask, spec_on_worker, use_shipped_adapter


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
