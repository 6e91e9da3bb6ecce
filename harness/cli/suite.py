"""Leaderboard verbs: `pricebench suite` (run a leaderboard's job matrix, skipping finished runs,
then build its report) and `pricebench report` (the static HTML report of a leaderboard or of
whole stores: docs/leaderboards.md)."""
from __future__ import annotations

import sys

from harness.cli.common import Verb
from harness.errors import InputError


class Suite(Verb):
    name = "suite"
    help = "run a leaderboard's job matrix (skipping finished runs), then build its report"

    def add_arguments(self, p) -> None:
        p.add_argument("leaderboard", help="path to a leaderboard YAML, e.g. leaderboards/course.yaml")
        p.add_argument("--dry-run", action="store_true", help="list each job as cached / partial / to-run; run nothing")
        p.add_argument("--executor", default="local", choices=["local", "ray"])
        p.add_argument("--address", help="Ray cluster address (default: a local Ray started on the fly)")
        p.add_argument("--only", action="append", metavar="GLOB",
                       help="only models matching, e.g. 'reference:*' (repeatable)")
        p.add_argument("--out", help="report folder (default reports/<leaderboard name>)")
        p.add_argument("--no-report", action="store_true", help="run the jobs, skip the report")

    def execute(self, args) -> int:
        from harness.suite import load_leaderboard, run_suite, select
        from harness.suite.executors import make_executor

        board = load_leaderboard(args.leaderboard)
        jobs = select(board.jobs, args.only)
        if not jobs:
            raise InputError(f"no job of {board.name} matches {args.only}", field="--only")
        if args.dry_run:
            return _dry_run(jobs, args)
        if not args.no_report:      # an --out the report could not replace is refused before any job runs
            from harness.report import check_out_dir, report_dir

            check_out_dir(report_dir(board, args.out))
        executor = make_executor(args.executor, args.address)
        result = run_suite(board, executor=executor, data_dir=args.data_dir, store=args.store, only=args.only)
        trained = f"{len(result.trainings)} trainings ({len(result.training_failures)} failed), " \
            if result.trainings else ""
        print(f"{trained}{len(result.outcomes)} jobs done, {len(result.failures)} failed, "
              f"{result.computed} items predicted")
        if not args.no_report:
            _report(board, args)
        return _print_failures(result)


def _report(board, args) -> None:
    from harness.report import report_for_leaderboard
    from harness.runs.store import RunStore
    from harness.suite import board_with_checkpoints

    RunStore(args.store).root.mkdir(parents=True, exist_ok=True)    # the suite's store, even if no job wrote
    index = report_for_leaderboard(board_with_checkpoints(board, data_dir=args.data_dir), out_dir=args.out,
                                   data_dir=args.data_dir, store=args.store)
    print(f"report: {index}")


def _print_failures(result) -> int:
    if not (result.failures or result.training_failures):
        return 0
    print(f"\n{len(result.failures)} job(s) failed:", file=sys.stderr)
    for train, outcome in result.training_failures:
        print(f"  {train.describe()}: {outcome['error']}", file=sys.stderr)
    for job, outcome in result.failures:
        print(f"  {job.describe()}: {outcome['error']}", file=sys.stderr)
    return 1


def _dry_run(jobs, args) -> int:
    """Where each training and each job stands, from identities alone: nothing is trained or run."""
    from harness.suite import job_status, training_jobs, with_checkpoints
    from harness.suite.training import training_status

    cache, counts = {}, {}
    trainings = training_jobs(jobs)
    for train in trainings:
        state, detail, adapter_id = training_status(train, data_dir=args.data_dir, task_cache=cache)
        counts[f"{state} (training)"] = counts.get(f"{state} (training)", 0) + 1
        adapter = f"  adapter {adapter_id}" if adapter_id else ""
        print(f"{state:<12}{train.describe()}{adapter}{f'  {detail}' if detail else ''}")
    shown = 0
    for job in jobs:
        expanded = with_checkpoints([job], data_dir=args.data_dir, task_cache=cache)
        for each in expanded:
            status = job_status(each, data_dir=args.data_dir, store=args.store, task_cache=cache)
            counts[status.state] = counts.get(status.state, 0) + 1
            note = f"  {status.detail}" if status.detail else ""
            rid = f"  {status.run_id}" if status.run_id else ""
            print(f"{status.state:<12}{each.describe()}{rid}{note}")
        shown += len(expanded)
        if job.checkpoints and len(expanded) == 1:
            print(f"{'':<12}+ one job per checkpoint ({_checkpoint_words(job)}) once trained")
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    trained = f"{len(trainings)} trainings and " if trainings else ""
    print(f"{trained}{shown} jobs: {summary} (dry run: nothing was run)")
    return 0


def _checkpoint_words(job) -> str:
    return "all" if job.checkpoints == ("all",) else "steps " + ", ".join(map(str, job.checkpoints))


class Report(Verb):
    name = "report"
    help = "build the static HTML report of a leaderboard (or of a whole store)"
    many_stores = True          # several: one leaderboard from all (docs/leaderboards.md)

    def add_arguments(self, p) -> None:
        p.add_argument("leaderboard", nargs="?", help="leaderboard YAML; omit it to report every run in --store")
        p.add_argument("--out", help="report folder (default reports/<leaderboard name>)")
        p.add_argument("--name", default="store", help="report name when reporting a whole store (default: store)")

    def execute(self, args) -> int:
        from harness.report import report_for_leaderboard, report_for_store

        stores = args.stores or None
        if args.leaderboard:
            from harness.suite import board_with_checkpoints, load_leaderboard

            board = board_with_checkpoints(load_leaderboard(args.leaderboard), data_dir=args.data_dir)
            index = report_for_leaderboard(board, out_dir=args.out, data_dir=args.data_dir, store=stores)
        else:
            index = report_for_store(store=stores, out_dir=args.out, name=args.name)
        print(f"report: {index}")
        return 0
