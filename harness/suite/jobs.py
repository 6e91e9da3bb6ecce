"""One job of a suite: where it stands in the store (from its identity alone), and running it.

Every job is an ordinary `harness.run`, so the store's content-hash cache makes a re-run of a
suite skip finished jobs and resume partial ones; a failing job never stops the others.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field

from harness.errors import InputError
from harness.suite.leaderboard import Job

@dataclass
class JobStatus:
    """state: cached | failed (every request failed) | partial | damaged | to-run | published |
    unavailable (the predictor cannot be built)."""

    job: Job
    state: str
    run_id: str | None = None
    done: int = 0
    total: int = 0
    detail: str = ""
    published_row: dict | None = field(default=None, repr=False)
    inspection: object = field(default=None, repr=False)     # store.Inspection of the run folder, if read


_PROCESS_TASKS: dict = {}   # tasks loaded in this process (a local suite or the Ray driver), by data dir


def job_task(job: Job, data_dir, cache: dict | None = None):
    """The job's task, loaded once per process (or per `cache`) and shared by its jobs."""
    from harness.tasks import load_task

    cache = _PROCESS_TASKS.setdefault(str(data_dir), {}) if cache is None else cache
    if job.task not in cache:
        cache[job.task] = load_task(job.task, data_dir=data_dir)
    return cache[job.task].with_in_context(job.in_context_dict)     # a copy sharing the loaded items


def job_status(job: Job, *, data_dir=None, store=None, task_cache: dict | None = None) -> JobStatus:
    """Where a job stands, computed from its identity alone: nothing is fitted, loaded or run."""
    from harness.predictors import make_predictor
    from harness.retrieval.config import task_for
    from harness.runs.runner import run_identity
    from harness.runs.store import RunStore

    task_cache = {} if task_cache is None else task_cache
    try:
        task = job_task(job, data_dir, task_cache)
        predictor = make_predictor(job.model_spec)
        task = task_for(task, predictor)
        try:
            published = getattr(predictor, "published", None)
            row = published(task) if published else None
            if row is not None:
                return JobStatus(job, "published", total=int(row.get("n", 250)), published_row=row,
                                 detail=f"published figure ({row.get('source') or 'task spec'})")
            _, rid = run_identity(task, predictor.spec, predictor)
        finally:
            predictor.close()
    except Exception as e:  # noqa: BLE001 - a job that cannot even be planned is reported, not raised
        return JobStatus(job, "unavailable", detail=failure_reason(e))
    seen = RunStore(store).folder(rid).inspect()
    total, done = len(task.eval_items()), len(seen.records)
    if seen.state == "complete":
        failed = seen.metrics.get("failed", 0)
        if failed >= total:
            return JobStatus(job, "failed", rid, done, total, f"all {total} requests failed; a re-run asks again",
                             inspection=seen)
        return JobStatus(job, "cached", rid, done, total, f"{failed} failed requests" if failed else "",
                         inspection=seen)
    if seen.state == "damaged":
        more = f" (+{len(seen.problems) - 1} more)" if len(seen.problems) > 1 else ""
        return JobStatus(job, "damaged", rid, done, total, f"{seen.problems[0]}{more}; a re-run repairs it")
    if done:
        return JobStatus(job, "partial", rid, done, total, f"resumes at {done}/{total}")
    return JobStatus(job, "to-run", rid, 0, total)


def failure_reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if not isinstance(e, InputError) else f"InputError: {e}"


def execute_job(job: Job, data_dir=None, store=None, proxy=None, progress=False) -> dict:
    """Run one job through harness.run; never raises: the outcome says what happened.
    `proxy`: see harness.run (the Ray executor predicts on a worker, the store is written here).
    `progress`: what runner.run shows while it predicts (default nothing; harness.progress.job_progress:
    a bar)."""
    import time

    from harness.runs.runner import run

    t0 = time.perf_counter()
    try:
        # Load (and validate, and hash) each task's items once per process, not once per job.
        task = job_task(job, data_dir)
        result = run(task, job.model, quant=job.quant, prompt=job.prompt, options=job.options_dict,
                     data_dir=data_dir, store=store, progress=progress, proxy=proxy)
    except Exception as e:  # noqa: BLE001 - keep going; the suite lists failures at the end
        return {"ok": False, "error": failure_reason(e), "traceback": traceback.format_exc(limit=6),
                "seconds": round(time.perf_counter() - t0, 3)}
    if result.failed_all:
        return {"ok": False, "run_id": result.run_id, "computed": result.computed,
                "error": f"all {result.metrics['n']} requests failed (run {result.run_id}); a re-run asks again",
                "seconds": round(time.perf_counter() - t0, 3)}
    return {"ok": True, "run_id": result.run_id, "cached": result.cached, "computed": result.computed,
            "published": result.published, "mae": result.metrics.get("mae"),
            "failed_items": result.metrics.get("failed", 0), "seconds": round(time.perf_counter() - t0, 3)}
