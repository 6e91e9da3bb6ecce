"""The Ray executor: jobs predict on the cluster's workers, the driver (this process) writes the store.

No shared filesystem: for each job, the runner here (the same code as a local run: identity,
resume, records, scoring, manifest, all under the run folder's lock) drives a `RemotePredictor`
in place of the job's predictor. That starts a `JobWorker` actor with the job's resources,
sends it the model spec and the task as loaded here (its items, and its train split when the
run's identity read it) through Ray's object store, and receives the replies in batches (every
`send_every_items` replies or `send_every_s` seconds) as a Ray streaming generator, appending
them as they come. A worker lost mid-job costs at most its unsent batch: the job is run again
(`retries` times), and the runner resumes from the items already stored. Recorded runs replay
files of the data folder, which only the driver is sure to have: they run here, in milliseconds.
"""
from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, as_completed, wait
from typing import Iterator

from harness.errors import InputError
from harness.suite.jobs import execute_job
from harness.suite.ray_training import Trainer, on_a_worker
from harness.suite.ray_worker import JobWorker
from harness.suite.resources import job_resources
from harness.suite.shipped import ShippedTask, ship_adapter


class WorkerLost(RuntimeError):
    """The Ray worker (its process or its node) running a job died: the job is run again."""


class RemotePredictor:
    """What the runner drives in place of a job's predictor. The predictor built here (validated,
    never prepared) answers for the spec, prompts and identity (`__getattr__`); the real one runs
    in a JobWorker actor, which prepares it and streams its replies."""

    def __init__(self, local, job, executor: "RayExecutor"):
        from harness.predictors import BACKENDS

        self.local, self.job, self.executor = local, job, executor
        self.batch_size, self.kind = local.batch_size, local.kind
        # the spec as given (a scrubbed URL would not connect) and the registry entry that builds it
        self.given = job.model_spec
        self.backend = BACKENDS.get(self.given.backend)
        self.actor, self.prepared, self.reported = None, None, None
        self.lost, self.streaming = False, False
        self.received, self.todo, self.started = 0, 0, None

    def __getattr__(self, name):
        if name.startswith("_") or name == "local":     # not set yet (or pickling): no recursion
            raise AttributeError(name)
        return getattr(self.local, name)

    def _get(self, ref):
        ray = self.executor.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:   # the predictor raised: the job fails as it would here
            raise (e.cause if isinstance(e.cause, Exception) else RuntimeError(str(e))) from None
        except ray.exceptions.RayError as e:       # the worker process or its node died
            if self.executor.stopping:             # ... or the suite is stopping: saved as interrupted
                raise KeyboardInterrupt from None
            self.lost = True
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise WorkerLost(f"the Ray worker running this job was lost ({type(e).__name__}: {first})") from None

    def prepare(self, task) -> None:
        if self.actor is not None:
            return
        with self.executor.lock:
            if self.executor.stopping:
                raise KeyboardInterrupt
            self.actor = self.executor.actor_class.options(**job_resources(self.job)).remote()
        adapter = ship_adapter(self.local, task)        # a finetune: job's adapter, from the driver's cache
        self.prepared = self._get(self.actor.prepare.remote(self.given, self.backend, self.executor.ship(task),
                                                            adapter and self.executor.ray.put(adapter)))
        self.batch_size = self.prepared["batch_size"]

    def environment(self) -> dict:
        return self.prepared["environment"] if self.prepared else self.local.environment()

    def reply_environment(self) -> dict:
        return self.prepared["reply_environment"] if self.prepared else self.local.reply_environment()

    def predict(self, requests):
        wanted = {request.item.id: request for request in requests}
        self.todo, self.started, self.streaming = len(wanted), time.monotonic(), True
        stream = self.actor.predict.options(num_returns="streaming").remote(
            list(requests), self.executor.send_every_items, self.executor.send_every_s)
        while True:
            try:
                batch = self._get(next(stream))
            except StopIteration:
                break
            for item_id, reply in batch:
                self.received += 1
                yield wanted[item_id], reply
        self.streaming = False
        if self.received < self.todo:
            raise RuntimeError(f"the Ray worker sent {self.received} of {self.todo} replies")
        self.reported = self._get(self.actor.report.remote())
        self.kind = self.reported["kind"]

    def label(self) -> str:
        return self.reported["label"] if self.reported else self.local.label()

    def run_info(self) -> dict:
        return self.reported["run_info"] if self.reported else self.local.run_info()

    def progress(self) -> str | None:
        if self.started is None or not self.streaming:
            return None
        rate = self.received / max(time.monotonic() - self.started, 1e-9)
        return f"{self.job.describe()}: {self.received}/{self.todo} items, {rate:.2f} items/s"

    def stop(self) -> None:
        """End the worker now (the suite is stopping): the job's thread then saves what arrived."""
        if self.actor is not None:
            self.executor.ray.kill(self.actor)

    def close(self) -> None:
        actor, self.actor = self.actor, None
        if actor is not None:
            ray = self.executor.ray
            if not (self.lost or self.streaming or self.executor.stopping):   # let it free models, servers
                try:
                    ray.get(actor.close.remote(), timeout=60)
                except Exception:  # noqa: BLE001 - it is killed below either way
                    pass
            ray.kill(actor)
        self.local.close()


class RayExecutor:
    """Jobs run side by side (one driver thread each, waiting on Ray); see the module docstring."""

    name = "ray"

    def __init__(self, address: str | None = None, *, retries: int = 3, send_every_items: int = 32,
                 send_every_s: float = 5.0, progress_every: float = 30.0, max_parallel: int = 64, say=None):
        self.address, self.retries, self.max_parallel = address, retries, max_parallel
        self.send_every_items, self.send_every_s, self.progress_every = send_every_items, send_every_s, progress_every
        self.say = say or (lambda line: print(f"pricebench ray: {line}", file=sys.stderr, flush=True))
        self.ray = self.actor_class = None
        self._started_here = False
        self._shipped: dict = {}
        self.lock = threading.Lock()
        self._running: dict = {}
        self.stopping = False

    def ship(self, task):
        """The task in Ray's object store, once per task (and per loaded part), shared by its jobs."""
        key = (id(task), "train" in task._cache)
        with self.lock:
            if key not in self._shipped:
                self._shipped[key] = (task, self.ray.put(ShippedTask.of(task)))   # the task: keeps id(task) unique
            return self._shipped[key][1]

    def _run_job(self, job, data_dir, store) -> dict:
        """One job, run again while its worker is lost (each time from the items already stored)."""
        earlier_items, earlier_s = 0, 0.0
        for attempt in range(self.retries + 1):
            stand_ins = []

            def proxy(predictor):
                if predictor.reads_task_files:
                    return predictor
                stand_ins.append(RemotePredictor(predictor, job, self))
                self._running[job] = stand_ins[-1]
                return stand_ins[-1]

            outcome = execute_job(job, data_dir, store, proxy=proxy)
            self._running.pop(job, None)
            lost = stand_ins and stand_ins[0].lost
            if not lost or self.stopping or attempt == self.retries:
                break
            earlier_items += stand_ins[0].received
            earlier_s += outcome["seconds"]
            self.say(f"{job.describe()}: {outcome['error']}; running it again ({attempt + 1}/{self.retries}) "
                     f"from the items stored ({stand_ins[0].received} arrived before the loss)")
        outcome["computed"] = outcome.get("computed", 0) + earlier_items
        outcome["seconds"] = round(outcome["seconds"] + earlier_s, 3)
        return outcome

    def _show_progress(self) -> None:
        for stand_in in list(self._running.values()):
            line = stand_in.progress()
            if line:
                self.say(line)

    def _connect(self) -> None:
        """Join (or start) Ray once per suite; the last `map` of the suite shuts down what this started."""
        if self.ray is not None:
            return
        try:
            import ray
        except ModuleNotFoundError:
            raise InputError("the ray executor needs Ray: pip install 'pricebench[ray]'", field="--executor") from None
        self._started_here = not ray.is_initialized()
        if self._started_here:
            try:
                ray.init(address=self.address, log_to_driver=False, include_dashboard=False)
            except ConnectionError as e:
                raise InputError(f"cannot reach the Ray cluster at {self.address!r}: {e}", field="--address") from None
        self.ray, self.actor_class = ray, ray.remote(JobWorker)

    def train(self, trainings, *, data_dir=None) -> Iterator[tuple]:
        """The suite's trainings: those asking for a GPU (or a custom resource) as Ray tasks side by side,
        the others here, one after another with their progress, meanwhile (ray_training.py). Ctrl-C
        cancels the Ray tasks; a training here keeps its checkpoints, as `pricebench finetune` does."""
        from harness.progress import job_progress
        from harness.suite.training import execute_training

        if not trainings:
            return
        self._connect()
        remote = [train for train in trainings if on_a_worker(train)]
        pool = ThreadPoolExecutor(max_workers=max(1, min(len(remote), self.max_parallel)),
                                  thread_name_prefix="pricebench-train")
        trainers = {train: Trainer(self, train) for train in remote}
        try:
            futures = {pool.submit(execute_training, train, data_dir, False, trainers[train]): train
                       for train in remote}
            for train in trainings:
                if train not in trainers:
                    yield train, execute_training(train, data_dir, job_progress(train.describe(), unit="step"))
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            for trainer in trainers.values():
                trainer.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    def map(self, jobs, *, data_dir=None, store=None) -> Iterator[tuple]:
        self._connect()
        ray, started_here = self.ray, self._started_here
        self.stopping = False
        pool = ThreadPoolExecutor(max_workers=max(1, min(len(jobs), self.max_parallel)),
                                  thread_name_prefix="pricebench-ray")
        try:
            futures = {pool.submit(self._run_job, job, data_dir, store): job for job in jobs}
            show_at = time.monotonic() + self.progress_every
            while futures:
                done, _ = wait(futures, timeout=max(0.0, show_at - time.monotonic()), return_when=FIRST_COMPLETED)
                if time.monotonic() >= show_at:
                    self._show_progress()
                    show_at = time.monotonic() + self.progress_every
                for future in done:
                    yield futures.pop(future), future.result()
        finally:   # done, or Ctrl-C: no new worker starts, running ones end, their jobs save what arrived
            with self.lock:
                self.stopping = True
            pool.shutdown(wait=False, cancel_futures=True)
            for stand_in in list(self._running.values()):
                stand_in.stop()
            pool.shutdown(wait=True)
            self._shipped.clear()
            self.ray = self.actor_class = None
            if started_here:
                ray.shutdown()
