"""Moving results out and in: `pricebench export runs|eee|lm-eval` (a bundle of runs for another
store, Every Eval Ever files, a task folder for lm-eval: docs/exports.md) and `pricebench
import` (a bundle merged into this store). The old verbs export-runs, export-eee and
export-lm-eval stay, as aliases with the same arguments and handler."""
from __future__ import annotations

import sys

from harness.cli.common import Group, Verb, add_in_context, count, in_context_args


class ExportRuns(Verb):
    name = "runs"
    help = "write runs of the store (by id, or a leaderboard's) to one bundle file"

    def add_arguments(self, p) -> None:
        p.add_argument("runs", nargs="+", metavar="RUN", help="run id or unique prefix, or a leaderboard YAML")
        p.add_argument("file", metavar="FILE", help="the bundle to write (.tar.gz); replaces only a bundle it wrote")

    def execute(self, args) -> int:
        from harness.runs.bundles import export_runs

        refs, skipped = [], []
        for ref in args.runs:
            if ref.endswith((".yaml", ".yml")):
                from harness.suite import stored_runs

                found, missing = stored_runs(ref, store=args.store, data_dir=args.data_dir)
                refs += found
                skipped += missing
            else:
                refs.append(ref)
        done = export_runs(refs, args.file, store=args.store, skipped=skipped)
        for line in done.skipped:
            print(f"pricebench: skipped (nothing stored): {line}", file=sys.stderr)
        partial = sum(state == "partial" for state in done.runs.values())
        print(f"wrote {done.path}: {len(done.runs)} run(s) ({len(done.runs) - partial} complete, {partial} partial), "
              f"{done.size:,} bytes; on the other machine: pricebench import {done.path.name}")
        return 0


class ExportEee(Verb):
    name = "eee"
    help = "write stored runs, or a leaderboard's, as Every Eval Ever files (schema 0.3.0)"

    def add_arguments(self, p) -> None:
        p.add_argument("sources", nargs="+", metavar="RUN_ID | LEADERBOARD.yaml", help="run ids (or unique "
                       "prefixes), or one leaderboard YAML (its complete runs and published rows)")
        p.add_argument("out", metavar="OUT_DIR", help="output folder (new, empty, or written by an earlier "
                                                      "export eee)")

    def execute(self, args) -> int:
        from harness.exports.eee import export_eee

        result = export_eee(args.sources, args.out, data_dir=args.data_dir, store=args.store)
        for row, items in result.written:
            what = f"{items} items" if items else "aggregate only: a published figure"
            print(f"wrote {row.folder / row.file_id}.json ({what}): {row.aggregate['model_info']['name']}")
        for line in result.skipped:
            print(f"not exported: {line}")
        if not result.written:
            print(f"pricebench: error: nothing to export ({len(result.skipped)} job(s) not complete)",
                  file=sys.stderr)
            return 1
        published = sum(1 for _, items in result.written if not items)
        print(f"{len(result.written)} exported to {result.out} ({len(result.written) - published} runs with items, "
              f"{published} published figures), {len(result.skipped)} not exported; validate with:\n"
              f"  python -m every_eval_ever.validate '{result.out}/data/*/*/*/*.json*'")
        return 0


class ExportLmEval(Verb):
    name = "lm-eval"
    help = "write a task folder that `lm_eval --include_path` runs"

    def add_arguments(self, p) -> None:
        p.add_argument("task", help="task name or path to a task YAML")
        p.add_argument("dir", help="output folder")
        p.add_argument("--slice", help="evaluation slice (default: the task's)")
        p.add_argument("--max-new-tokens", type=count(1, 4096), default=6,
                       help="generation budget (default 6, as hf:)")
        p.add_argument("--prompt", choices=["base", "chat"], default="base",
                       help="base completion prompt, or the chat prompt (run with lm_eval --apply_chat_template)")
        add_in_context(p)

    def execute(self, args) -> int:
        from harness.exports.lm_eval import export_lm_eval, task_name
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


class Export(Group):
    name = "export"
    help = "export runs (a bundle for another store), eee (Every Eval Ever files) or lm-eval (a task folder)"
    members = (ExportRuns, ExportEee, ExportLmEval)
    flat_aliases = True             # export-runs, export-eee, export-lm-eval: the verbs' first names


class Import(Verb):
    name = "import"
    help = "merge a bundle of runs (export runs) into the store"

    def add_arguments(self, p) -> None:
        p.add_argument("file", metavar="FILE", help="a bundle written by pricebench export runs")

    def execute(self, args) -> int:
        from harness.runs.bundles import import_bundle

        done = import_bundle(args.file, store=args.store, echo=print)
        print(f"imported {done.path}: {done.written} of {len(done.outcomes)} run(s) written to the store")
        return 0
