"""`pricebench` command line: verbs that read like sentences.

pricebench tasks
pricebench run --task amazon8 --model reference:human
pricebench show <run-id>
pricebench compare <run-id> <run-id>
pricebench verify <run-id> [--items 32]
pricebench suite leaderboards/course.yaml [--dry-run] [--executor ray --address HOST:PORT]
pricebench report leaderboards/course.yaml | pricebench report --store runs [--store other-runs]
pricebench export-runs <run-id>... | leaderboard.yaml FILE ; pricebench import FILE
pricebench export-lm-eval amazon8 lm_eval_tasks/
pricebench export-eee <run-id>... | leaderboards/course.yaml OUT_DIR
pricebench curate OUT --name NAME --raw meta_Appliances.jsonl [--tokenizer ...] [--seed 42]
pricebench finetune RECIPE [--task T] [--max-steps N] [--adapters DIR] [--threads N]
"""
from __future__ import annotations

import json
import signal
import sys
import threading

from harness.cli_args import in_context_args, parse_args, parse_options
from harness.errors import InputError, describe
from harness.jsonio import finite_json


def cmd_tasks(args) -> int:
    from harness.tasks import all_tasks

    print(f"{'task':<14}{'eval slice':<12}{'eval items':>11}{'train items':>13}{'excluded':>10}  "
          f"{'data hash':<18}source")
    for task in all_tasks(data_dir=args.data_dir, strict=args.strict):
        where = str(task.data_dir) if task.is_local else task.spec["source"]["hub"]["dataset"] + " (hub)"
        print(f"{task.name:<14}{task.eval_slice:<12}{len(task.eval_items()):>11,}{len(task.train_items()):>13,}"
              f"{len(task.train_excluded):>10,}  {task.eval_hash:<18}{where}")
    return 0


def cmd_run(args) -> int:
    from harness.retrieval.config import CLI_FLAGS
    from harness.runs.runner import run
    from harness.tasks import load_task

    task = args.task
    if args.strict:            # refuse a train split that holds a copy of an evaluation item
        task = load_task(args.task, data_dir=args.data_dir, eval_slice=args.slice, strict=True)
        task.train_items()
    try:
        result = run(task, args.model, quant=args.quant, prompt=args.prompt, options=parse_options(args.option),
                     eval_slice=args.slice, data_dir=args.data_dir, store=args.store, allow_mixed=args.allow_mixed,
                     in_context=in_context_args(args))
    except InputError as e:      # an in-context option's error names the flag as typed (--shot-selector)
        if e.field not in CLI_FLAGS or e.path is not None:
            raise
        raise InputError(e.reason, field=CLI_FLAGS[e.field]) from None
    for note in result.notes:
        print(f"pricebench: {note}", file=sys.stderr)
    code = 1 if result.failed_all else 0
    if result.failed_all:
        print(f"pricebench: error: run {result.run_id} failed: all {result.metrics['n']} requests failed "
              f"(first: {_first_failure(result)}); run the same command again to retry", file=sys.stderr)
    if args.json:
        print(json.dumps(finite_json({"run_id": result.run_id, "path": str(result.path) if result.path else None,
                                      "cached": result.cached, "published": result.published,
                                      "failed": result.failed_all, "metrics": result.metrics}), allow_nan=False))
        return code
    if result.failed_all:
        return code
    print(result.summary())
    if result.published:
        print(f"(published figure from {result.manifest.source}; per-item data needs the offline files)")
    else:
        state = "cached: nothing recomputed" if result.cached else f"{result.computed} items predicted"
        print(f"run {result.run_id} ({state}) -> {result.path}")
    return code


def _first_failure(result) -> str:
    failures = result.df["failure"].dropna() if "failure" in result.df else []
    return " ".join(str(failures.iloc[0]).split())[:160] if len(failures) else "?"


def cmd_show(args) -> int:
    from harness.runs.results import load_run
    from harness.scoring import METRIC_BY_KEY
    from harness.runs.store import RunStore

    result = load_run(RunStore(args.store).find(args.run))
    m, man = result.metrics, result.manifest
    for note in result.notes:
        print(f"pricebench: {result.state}: {note}", file=sys.stderr)
    print(result.summary())
    status = "FAILED: every request failed" if result.failed_all else man.status
    if result.state != "complete":
        status = f"{result.state} (a re-run of the same command completes it)"
    items = man.n_items if man.n_items is not None else "?"
    print(f"run {result.run_id}: task {man.task} ({items} items), model {man.model}, "
          f"quant {man.quant}, prompt {man.prompt_style}, status {status}")
    timings = man.timings.as_json() if man.timings else None
    print(f"colours: green {m['green']}  orange {m['orange']}  red {m['red']}   "
          f"timings: {timings}   cost {METRIC_BY_KEY['cost_usd'].show(man.cost_usd or 0)}")
    for entry in man.mixed or []:
        what = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in (entry.differs or {}).items())
        print(f"MIXED: session {(entry.session or 0) + 1} ran under another environment ({what})")
    if man.verifications:
        v = man.verifications[-1]
        print(f"last verified {v.at}: {v.identical}/{v.checked} replies identical "
              f"({v.agreement_pct:.1f}%), MAE on them ${v.stored_mae:,.2f} stored vs ${v.recomputed_mae:,.2f}")
    worst = result.df.sort_values("error", ascending=False).head(args.worst)
    print(f"\nworst {len(worst)} misses:")
    for row in worst.itertuples():
        print(f"  {row.id:<16} truth ${row.truth:>9,.2f}  guess ${row.guess:>9,.2f}  error ${row.error:>9,.2f}  "
              f"{str(row.title)[:60]}")
    return 0


def cmd_compare(args) -> int:
    from harness.runs.results import load_run
    from harness.scoring import paired_bootstrap
    from harness.runs.store import RunStore

    store = RunStore(args.store)
    a, b = (load_run(store.find(r)) for r in (args.run_a, args.run_b))
    merged = a.df[["id", "error"]].merge(b.df[["id", "error"]], on="id", suffixes=("_a", "_b"))
    if merged.empty:
        raise InputError("the two runs share no items", field="run")
    test = paired_bootstrap(merged["error_a"], merged["error_b"])
    print(f"A: {a.summary()}\nB: {b.summary()}")
    print(f"on {test['n']} shared items: mean(error A - error B) = ${test['mean_diff']:,.2f}, "
          f"95% CI [${test['ci_low']:,.2f}, ${test['ci_high']:,.2f}], p = {test['p_value']:.4f}")
    verdict = {"A": "A is significantly better", "B": "B is significantly better",
               None: "no significant difference"}[test["better"]]
    print(verdict)
    return 0


def cmd_verify(args) -> int:
    from harness.runs.store import RunStore
    from harness.runs.verify import verify

    result = verify(RunStore(args.store).find(args.run), items=args.items, seed=args.seed, task_ref=args.task,
                    data_dir=args.data_dir, overrides=parse_options(args.option))
    note = f" (options overridden: {result.overrides})" if result.overrides else ""
    print(f"verify {result.run_id}{note}: {result.identical}/{result.checked} replies identical "
          f"({result.agreement:.1f}%); MAE on these items: stored ${result.stored_mae:,.2f}, "
          f"recomputed ${result.recomputed_mae:,.2f}")
    for key, (before, now) in result.environment_diff.items():
        print(f"  environment differs: {key} {before} -> {now}")
    for m in result.mismatches:
        print(f"  {m['id']}: stored {m['stored']!r}  recomputed {m['recomputed']!r}")
    if result.identical < result.checked:
        print(f"pricebench: verify: {result.checked - result.identical} of {result.checked} replies differ",
              file=sys.stderr)
        return 1
    return 0


def cmd_suite(args) -> int:
    from harness.suite.executors import make_executor
    from harness.suite import load_leaderboard, run_suite, select

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
        from harness.report import report_for_leaderboard
        from harness.runs.store import RunStore
        from harness.suite import board_with_checkpoints

        RunStore(args.store).root.mkdir(parents=True, exist_ok=True)    # the suite's store, even if no job wrote
        index = report_for_leaderboard(board_with_checkpoints(board, data_dir=args.data_dir), out_dir=args.out,
                                       data_dir=args.data_dir, store=args.store)
        print(f"report: {index}")
    if result.failures or result.training_failures:
        print(f"\n{len(result.failures)} job(s) failed:", file=sys.stderr)
        for train, outcome in result.training_failures:
            print(f"  {train.describe()}: {outcome['error']}", file=sys.stderr)
        for job, outcome in result.failures:
            print(f"  {job.describe()}: {outcome['error']}", file=sys.stderr)
        return 1
    return 0


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


def cmd_report(args) -> int:
    from harness.report import report_for_leaderboard, report_for_store

    stores = args.stores or None        # several: one leaderboard from all (docs/leaderboards.md)
    if args.leaderboard:
        from harness.suite import load_leaderboard

        from harness.suite import board_with_checkpoints

        board = board_with_checkpoints(load_leaderboard(args.leaderboard), data_dir=args.data_dir)
        index = report_for_leaderboard(board, out_dir=args.out, data_dir=args.data_dir, store=stores)
    else:
        index = report_for_store(store=stores, out_dir=args.out, name=args.name)
    print(f"report: {index}")
    return 0


def cmd_export_runs(args) -> int:
    from harness.runs.bundles import export_runs

    done = export_runs(args.runs, args.file, store=args.store, data_dir=args.data_dir)
    for line in done.skipped:
        print(f"pricebench: skipped (nothing stored): {line}", file=sys.stderr)
    partial = sum(state == "partial" for state in done.runs.values())
    print(f"wrote {done.path}: {len(done.runs)} run(s) ({len(done.runs) - partial} complete, {partial} partial), "
          f"{done.size:,} bytes; on the other machine: pricebench import {done.path.name}")
    return 0


def cmd_import_runs(args) -> int:
    from harness.runs.bundles import import_bundle

    done = import_bundle(args.file, store=args.store, echo=print)
    print(f"imported {done.path}: {done.written} of {len(done.outcomes)} run(s) written to the store")
    return 0


def cmd_export_lm_eval(args) -> int:
    from harness.lmeval_export import export_lm_eval, task_name
    from harness.retrieval.config import CLI_FLAGS
    from harness.tasks import load_task

    task = load_task(args.task, data_dir=args.data_dir, eval_slice=args.slice)
    task = task.with_in_context(in_context_args(args), names=CLI_FLAGS)
    path = export_lm_eval(task, args.dir, max_new_tokens=args.max_new_tokens, prompt=args.prompt)
    chat = " --apply_chat_template" if args.prompt == "chat" else ""
    print(f"wrote {path} ({len(task.eval_items())} items); run it with:\n"
          f"  lm_eval --model hf --model_args pretrained=<model>,dtype=float32 --device cpu "
          f"--include_path {path.parent} --tasks {task_name(task, args.prompt)} --batch_size 8{chat}")
    return 0


def cmd_export_eee(args) -> int:
    from harness.eee_export import export_eee

    result = export_eee(args.sources, args.out, data_dir=args.data_dir, store=args.store)
    for row, items in result.written:
        what = f"{items} items" if items else "aggregate only: a published figure"
        print(f"wrote {row.folder / row.file_id}.json ({what}): {row.aggregate['model_info']['name']}")
    for line in result.skipped:
        print(f"not exported: {line}")
    if not result.written:
        print(f"pricebench: error: nothing to export ({len(result.skipped)} job(s) not complete)", file=sys.stderr)
        return 1
    published = sum(1 for _, items in result.written if not items)
    print(f"{len(result.written)} exported to {result.out} ({len(result.written) - published} runs with items, "
          f"{published} published figures), {len(result.skipped)} not exported; validate with:\n"
          f"  python -m every_eval_ever.validate '{result.out}/data/*/*/*/*.json*'")
    return 0


def cmd_finetune(args) -> int:
    from harness.finetune.adapters import finetune
    from harness.finetune.recipe import load_recipe
    from harness.tasks import load_task

    recipe = load_recipe(args.recipe).with_threads(args.threads)
    if not (args.task or recipe.task):
        raise InputError("give --task (the recipe names no task)", path=recipe.path, field="task")
    task = load_task(args.task or recipe.task, data_dir=args.data_dir, strict=args.strict)
    result = finetune(recipe, task, adapters=args.adapters, max_steps=args.max_steps)
    training = result.manifest.get("training") or {}
    if args.json:
        print(json.dumps(finite_json({"adapter_id": result.adapter_id, "path": str(result.path),
                                      "final": str(result.final), "cached": result.cached,
                                      "training": training}), allow_nan=False))
        return 0
    if result.cached:
        print(f"adapter {result.adapter_id} (cached: nothing retrained) -> {result.final}")
    else:
        last = next((row for row in reversed(training.get("curve", [])) if "eval_loss" in row), {})
        mae = next((row["eval_mae"] for row in reversed(training.get("curve", [])) if "eval_mae" in row), None)
        validation = f"; validation loss {last['eval_loss']:.4f}" if last else ""
        validation += f", MAE ${mae:,.2f} on {training['curve'][-1].get('eval_mae_items', '?')} items" \
            if mae is not None else ""
        print(f"trained {recipe.name} on {task.name}: {training.get('steps')} steps, {training.get('tokens', 0):,} "
              f"tokens at {training.get('tokens_per_s')} tokens/s in {training.get('train_s')} s{validation}\n"
              f"adapter {result.adapter_id} -> {result.final}")
    where = f" -o adapters={args.adapters}" if args.adapters else ""
    print(f"evaluate it: pricebench run --task {task.name} --model finetune:{args.recipe}{where}")
    return 0


def cmd_curate(args) -> int:
    import shlex

    from harness.curate import curate
    from harness.curate.clean import Rules

    parts = ["pricebench", "curate", args.out, "--name", args.name]
    for flag, values in (("--raw", args.raw), ("--category", args.category)):
        for value in values:
            parts += [flag, value]
    if args.hub_category:
        parts += ["--hub-category", args.hub_category]
    parts += ["--seed", str(args.seed), "--test-size", str(args.test_size), "--tokenizer", args.tokenizer,
              "--min-tokens", str(args.min_tokens), "--max-tokens", str(args.max_tokens), "--min-chars",
              str(args.min_chars), "--bucket-cap", str(args.bucket_cap), "--keep-from", str(args.keep_from)]
    if args.skip_bad_lines:
        parts.append("--skip-bad-lines")
    folder = curate(args.out, name=args.name, raw=args.raw, hub_category=args.hub_category, categories=args.category,
                    seed=args.seed, test_size=args.test_size, tokenizer=args.tokenizer,
                    rules=Rules(args.min_tokens, args.max_tokens, args.min_chars), bucket_cap=args.bucket_cap,
                    keep_from=args.keep_from, skip_bad_lines=args.skip_bad_lines, command=shlex.join(parts))
    card = json.loads((folder / "data_card.json").read_text(encoding="utf-8"))["counts"]
    print(f"wrote {folder}: {card['test']:,} test + {card['train']:,} train items from {card['records']:,} records "
          f"({card['kept']:,} kept, {card['deduplicated']:,} duplicates); see {folder / 'DATA_CARD.md'}\n"
          f"  pricebench run --task {folder / (args.name + '.yaml')} --data-dir {folder.parent} --model ...")
    return 0


VERBS = {"tasks": cmd_tasks, "run": cmd_run, "show": cmd_show, "verify": cmd_verify, "compare": cmd_compare,
         "suite": cmd_suite, "report": cmd_report, "export-runs": cmd_export_runs, "import": cmd_import_runs,
         "export-lm-eval": cmd_export_lm_eval, "export-eee": cmd_export_eee, "curate": cmd_curate,
         "finetune": cmd_finetune}


def _interrupt(signum, frame):
    raise KeyboardInterrupt   # SIGTERM ends a run like Ctrl-C: what was predicted is saved


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as e:          # usage errors (exit 2) and --help (exit 0)
        return e.code if isinstance(e.code, int) else 2
    previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        return VERBS[args.command](args)
    except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - every failure becomes one line (or --debug)
        if args.debug:
            raise
        message, code = describe(e)
        print(f"pricebench: {message}", file=sys.stderr)
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
