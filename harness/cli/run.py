"""Run verbs: `pricebench run` (a model on a task, or the stored run reused), `show` (a stored
run's metrics and worst misses), `compare` (paired bootstrap of two runs), `verify` (recompute
a sample of a stored run: do the replies match?)."""
from __future__ import annotations

import json
import sys

from harness.cli.common import Verb, add_in_context, count, in_context_args, parse_options
from harness.errors import InputError


class Run(Verb):
    name = "run"
    help = "run a model on a task (or reuse the stored run)"

    def add_arguments(self, p) -> None:
        p.add_argument("--task", required=True, help="task name or path to a task YAML")
        p.add_argument("--model", required=True, help="backend:name, e.g. reference:human, hf:<checkpoint>")
        p.add_argument("--quant", default="none", choices=["none", "8bit", "4bit"])
        p.add_argument("--prompt", choices=["base", "chat"], help="prompt style (default: the backend's)")
        p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                       help="backend option, repeatable (pricebench options BACKEND lists them)")
        p.add_argument("--slice", help="evaluation slice, e.g. 0:250 or all (default: the task's)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.add_argument("--allow-mixed", action="store_true", help="resume even if the environment that can "
                       "change replies differs (the run is marked mixed)")
        add_in_context(p)

    def execute(self, args) -> int:
        from harness.retrieval.config import CLI_FLAGS
        from harness.runs.runner import run
        from harness.tasks import load_task

        task = args.task
        if args.strict:            # refuse a train split that holds a copy of an evaluation item
            task = load_task(args.task, data_dir=args.data_dir, eval_slice=args.slice, strict=True)
            task.train_items()
        try:
            result = run(task, args.model, quant=args.quant, prompt=args.prompt, options=parse_options(args.option),
                         eval_slice=args.slice, data_dir=args.data_dir, store=args.store,
                         allow_mixed=args.allow_mixed, in_context=in_context_args(args))
        except InputError as e:      # an in-context option's error names the flag as typed (--shot-selector)
            if e.field not in CLI_FLAGS or e.path is not None:
                raise
            raise InputError(e.reason, field=CLI_FLAGS[e.field]) from None
        for note in result.notes:
            print(f"pricebench: {note}", file=sys.stderr)
        return _print_run(result, as_json=args.json)


def _print_run(result, *, as_json: bool) -> int:
    from harness.jsonio import finite_json

    code = 1 if result.failed_all else 0
    if result.failed_all:
        print(f"pricebench: error: run {result.run_id} failed: all {result.metrics['n']} requests failed "
              f"(first: {_first_failure(result)}); run the same command again to retry", file=sys.stderr)
    if as_json:
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


class Show(Verb):
    name = "show"
    help = "metrics, CI and worst misses of a stored run"

    def add_arguments(self, p) -> None:
        p.add_argument("run", help="run id or unique prefix")
        p.add_argument("--worst", type=count(0, 10_000), default=10,
                       help="how many worst misses to list (default 10)")

    def execute(self, args) -> int:
        from harness.runs.results import load_run
        from harness.runs.store import RunStore
        from harness.scoring import METRIC_BY_KEY

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


class Compare(Verb):
    name = "compare"
    help = "paired bootstrap: is run A better than run B?"

    def add_arguments(self, p) -> None:
        p.add_argument("run_a", help="run id or unique prefix")
        p.add_argument("run_b", help="run id or unique prefix")

    def execute(self, args) -> int:
        from harness.runs.results import load_run
        from harness.runs.store import RunStore
        from harness.scoring import paired_bootstrap

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


class Verify(Verb):
    name = "verify"
    help = "recompute N random items of a stored run from scratch: do the replies match?"

    def add_arguments(self, p) -> None:
        p.add_argument("run", help="run id or unique prefix")
        p.add_argument("--items", type=count(1, 100_000), default=32, help="how many items (default 32)")
        p.add_argument("--seed", type=count(0, 2**31), default=0, help="which items (default 0)")
        p.add_argument("--task", help="the task YAML the run used, when it is not a registered task")
        p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                       help="override a stored option (e.g. batch_size=16): verify under another environment")

    def execute(self, args) -> int:
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
