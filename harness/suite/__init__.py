"""Suites: a leaderboard spec -> a matrix of jobs -> an executor (local | ray) -> the store -> the report.

leaderboard.py reads and validates the spec; jobs.py says where a job stands and runs one;
executors.py decides where jobs run. This module ties them together (imports point one way).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.suite.executors import LocalExecutor
from harness.suite.jobs import JobStatus, execute_job, job_status
from harness.suite.leaderboard import Job, Leaderboard, load_leaderboard, select
from harness.suite.training import (TrainJob, after_training, board_with_checkpoints, format_training, training_jobs,
                                   with_checkpoints)

__all__ = ["Job", "JobStatus", "Leaderboard", "SuiteResult", "TrainJob", "execute_job", "format_outcome",
           "board_with_checkpoints", "job_status", "load_leaderboard", "run_suite", "select", "stored_runs",
           "with_checkpoints"]


@dataclass
class SuiteResult:
    outcomes: list[tuple[Job, dict]]
    trainings: list[tuple[TrainJob, dict]] = field(default_factory=list)

    @property
    def jobs(self) -> list[Job]:
        """Every evaluation job the suite had, checkpoint jobs included (what its report shows)."""
        return [job for job, _ in self.outcomes]

    @property
    def training_failures(self) -> list[tuple[TrainJob, dict]]:
        return [(t, o) for t, o in self.trainings if not o["ok"]]

    @property
    def failures(self) -> list[tuple[Job, dict]]:
        return [(j, o) for j, o in self.outcomes if not o["ok"]]

    @property
    def computed(self) -> int:
        return sum(o.get("computed", 0) for _, o in self.outcomes if o["ok"])


def run_suite(board: Leaderboard, *, executor=None, data_dir=None, store=None, only=None, echo=print) -> SuiteResult:
    """Train the fine-tunes the matrix names (cached: a finished adapter is a hit), then run every job
    (cached ones return at once), checkpoint jobs included; collect failures, never stop."""
    executor = executor or LocalExecutor()
    jobs = select(board.jobs, only)
    trainings = training_jobs(jobs)
    trained = {}
    for train, outcome in executor.train(trainings, data_dir=data_dir):
        trained[train] = outcome
        echo(format_training(train, outcome, len(trained), len(trainings)))
    jobs, skipped = after_training(jobs, trained)
    total = len(jobs) + len(skipped)
    outcomes = []
    for job, outcome in skipped:
        outcomes.append((job, outcome))
        echo(format_outcome(job, outcome, len(outcomes), total))
    for job, outcome in executor.map(jobs, data_dir=data_dir, store=store):
        outcomes.append((job, outcome))
        echo(format_outcome(job, outcome, len(outcomes), total))
    return SuiteResult(outcomes, list(trained.items()))


def stored_runs(path, *, store, data_dir=None) -> tuple[list[str], list[str]]:
    """The run ids a leaderboard's jobs (checkpoint jobs included) have in `store` (complete, partial,
    failed or damaged: a damaged one is refused by name where it is read), and a line for each job
    with nothing stored. For `export runs LEADERBOARD.yaml`: the suite says which runs a leaderboard
    holds; runs/ never asks it."""
    from harness.runs.store import RunStore

    board, cache = board_with_checkpoints(load_leaderboard(path), data_dir=data_dir), {}
    RunStore(store).check_readable()    # a store named but absent is an error, never "nothing to export"
    found, skipped = [], []
    for job in board.jobs:
        status = job_status(job, data_dir=data_dir, store=store, task_cache=cache)
        if status.state in ("cached", "failed", "partial", "damaged"):
            found.append(status.run_id)
        else:
            skipped.append(f"{job.describe()}: {status.state}")
    return found, skipped


def format_outcome(job: Job, outcome: dict, number: int, total: int) -> str:
    head = f"[{number}/{total}] {job.describe()}"
    if not outcome["ok"]:
        return f"{head}: FAILED ({outcome['error'].splitlines()[0]})"
    if outcome.get("published"):
        return f"{head}: published figure, MAE ${outcome['mae']:,.2f}"
    state = "cached" if outcome["cached"] else f"{outcome['computed']} items predicted"
    return f"{head}: {state}, MAE ${outcome['mae']:,.2f} ({outcome['run_id']}, {outcome['seconds']:.1f}s)"
