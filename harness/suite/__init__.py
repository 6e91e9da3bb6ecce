"""Suites: a leaderboard spec -> a matrix of jobs -> an executor (local | ray) -> the store -> the report.

leaderboard.py reads and validates the spec; jobs.py says where a job stands and runs one;
executors.py decides where jobs run. This module ties them together (imports point one way).
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.suite.executors import LocalExecutor
from harness.suite.jobs import JobStatus, execute_job, job_status
from harness.suite.leaderboard import Job, Leaderboard, load_leaderboard, select

__all__ = ["Job", "JobStatus", "Leaderboard", "SuiteResult", "execute_job", "format_outcome", "job_status",
           "load_leaderboard", "run_suite", "select"]


@dataclass
class SuiteResult:
    outcomes: list[tuple[Job, dict]]

    @property
    def failures(self) -> list[tuple[Job, dict]]:
        return [(j, o) for j, o in self.outcomes if not o["ok"]]

    @property
    def computed(self) -> int:
        return sum(o.get("computed", 0) for _, o in self.outcomes if o["ok"])


def run_suite(board: Leaderboard, *, executor=None, data_dir=None, store=None, only=None, echo=print) -> SuiteResult:
    """Run every job of the matrix (cached ones return at once); collect failures, never stop."""
    executor = executor or LocalExecutor()
    jobs = select(board.jobs, only)
    outcomes = []
    for job, outcome in executor.map(jobs, data_dir=data_dir, store=store):
        outcomes.append((job, outcome))
        echo(format_outcome(job, outcome, len(outcomes), len(jobs)))
    return SuiteResult(outcomes)


def format_outcome(job: Job, outcome: dict, number: int, total: int) -> str:
    head = f"[{number}/{total}] {job.describe()}"
    if not outcome["ok"]:
        return f"{head}: FAILED ({outcome['error'].splitlines()[0]})"
    if outcome.get("published"):
        return f"{head}: published figure, MAE ${outcome['mae']:,.2f}"
    state = "cached" if outcome["cached"] else f"{outcome['computed']} items predicted"
    return f"{head}: {state}, MAE ${outcome['mae']:,.2f} ({outcome['run_id']}, {outcome['seconds']:.1f}s)"
