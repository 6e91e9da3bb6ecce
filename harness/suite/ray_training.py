"""Fine-tunes under the Ray executor: where a training runs, and the adapter travelling as bytes.

A training asks Ray for what its evaluation asks (resources.py): the entry's `resources`, else 1
CPU, plus 1 GPU when the recipe trains on CUDA (`device: cuda` or `cuda:N`). A training that asks for no GPU
and no custom resource runs on the driver, one at a time and showing its progress, as recorded
runs do: it writes the driver's adapter cache directly and resumes there (Ctrl-C keeps its
checkpoints). One that does runs as a Ray task (max_retries 0; cancelled on Ctrl-C) on a node
that has it: the driver sends the recipe, the task as it loaded it (train split included) and
the adapter's partial folder if it has one (so a training stopped earlier resumes); the worker
trains into a temporary folder and returns the finished adapter as tar bytes, which the driver
installs into its cache (harness/finetune/shipping.py) under the adapter's lock. No disk is
shared. A worker lost mid-training loses what it trained since its start (the job fails with
one line; a rerun starts again from the driver's partial folder).

Evaluating a fine-tune on a worker: the driver locates the adapter (its id needs the train
split, which only the driver reads) and ships the folder the job evaluates (final/ or one
checkpoint, without resume-only state; shipped.py); the worker's `finetune:` predictor loads it from there.
"""
from __future__ import annotations

from pathlib import Path

from harness.finetune.shipping import pack
from harness.suite.resources import training_resources, trains_remotely
from harness.suite.shipped import ShippedTask


def on_a_worker(train) -> bool:
    """Whether the training runs as a Ray task (a recipe that cannot be read trains, and fails, here)."""
    try:
        return trains_remotely(training_resources(train))
    except Exception:  # noqa: BLE001 - its training job says what is wrong, as one line
        return False


def train_on_worker(recipe, task, adapter_id: str, partial: bytes | None) -> tuple[bytes, dict]:
    """(Ray task) Train `recipe` on the shipped `task` in a temporary adapter cache, resuming from
    `partial`; the finished adapter folder as tar bytes, and where it trained."""
    import socket
    import tempfile

    import ray

    from harness.finetune.adapters import finetune
    from harness.finetune.shipping import unpack

    with tempfile.TemporaryDirectory(prefix="pricebench-train-") as tmp:
        if partial:
            unpack(partial, Path(tmp) / adapter_id)
        result = finetune(recipe, task, adapters=tmp, progress=False)
        if result.adapter_id != adapter_id:
            raise RuntimeError(f"the Ray worker's base weights or data differ from the driver's (adapter "
                               f"{result.adapter_id} there, {adapter_id} on the driver)")
        return pack(result.path), {"host": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id()}


class Trainer:
    """`execute_training`'s trainer for a training that runs as a Ray task (see the module docstring)."""

    def __init__(self, executor, train):
        self.executor, self.resources, self.ref, self.cancelled = executor, training_resources(train), None, False

    def __call__(self, plan, progress):
        from harness.finetune.adapters import AdapterResult

        folder = plan.folder
        if folder.is_complete():
            return AdapterResult(folder.adapter_id, folder.path, folder.manifest(), cached=True)
        with folder.lock():
            if folder.is_complete():
                return AdapterResult(folder.adapter_id, folder.path, folder.manifest(), cached=True)
            self._train_remotely(plan)
        return AdapterResult(folder.adapter_id, folder.path, folder.manifest(), cached=False)

    def cancel(self) -> None:
        """The suite is stopping: end the Ray task (its training is lost; a partial folder here stays)."""
        self.cancelled = True
        if self.ref is not None:
            self.executor.ray.cancel(self.ref, force=True)

    def _train_remotely(self, plan) -> None:
        from harness.finetune.shipping import install

        ray, folder = self.executor.ray, plan.folder
        plan.task.eval_items(), plan.task.train_items()         # loaded here: they travel with the task
        partial = pack(folder.path, resume_state=True) if folder.checkpoint_steps() else None
        if self.cancelled:
            raise RuntimeError("the suite stopped before this training started")
        remote = ray.remote(train_on_worker).options(**self.resources, max_retries=0)
        self.ref = remote.remote(plan.recipe, ShippedTask.of(plan.task), folder.adapter_id, partial)
        try:
            data, where = ray.get(self.ref)
        except ray.exceptions.RayTaskError as e:        # the training raised: the job fails as it would here
            raise (e.cause if isinstance(e.cause, Exception) else RuntimeError(str(e))) from None
        except ray.exceptions.RayError as e:            # its worker or node died, or the suite cancelled it
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise RuntimeError(f"the Ray worker training it was lost ({type(e).__name__}: {first})") from None
        install(folder, data, session={"ray_worker": where})


