"""Data verbs: `pricebench tasks` (the registered tasks) and `pricebench curate` (a task folder
from raw Amazon Reviews 2023 metadata, the course's rules: docs/curation.md)."""
from __future__ import annotations

import json

from harness.cli.common import Verb, count


class Tasks(Verb):
    name = "tasks"
    help = "list the registered tasks"

    def execute(self, args) -> int:
        from harness.tasks import all_tasks

        print(f"{'task':<14}{'eval slice':<12}{'eval items':>11}{'train items':>13}{'excluded':>10}  "
              f"{'data hash':<18}source")
        for task in all_tasks(data_dir=args.data_dir, strict=args.strict):
            where = str(task.data_dir) if task.is_local else task.spec["source"]["hub"]["dataset"] + " (hub)"
            print(f"{task.name:<14}{task.eval_slice:<12}{len(task.eval_items()):>11,}"
                  f"{len(task.train_items()):>13,}{len(task.train_excluded):>10,}  {task.eval_hash:<18}{where}")
        return 0


class Curate(Verb):
    name = "curate"
    help = "build a task folder from raw Amazon Reviews 2023 metadata (the course's rules)"

    def add_arguments(self, p) -> None:
        p.add_argument("out", help="folder to write OUT/NAME/ into (use OUT as --data-dir for the task)")
        p.add_argument("--name", required=True, help="task name (folder, file and id prefix)")
        p.add_argument("--raw", action="append", default=[], metavar="FILE.jsonl",
                       help="raw meta_<Category>.jsonl file, repeatable (category from the name, else main_category)")
        p.add_argument("--hub-category", help="download raw/meta_categories/meta_<CATEGORY>.jsonl of "
                                              "McAuley-Lab/Amazon-Reviews-2023")
        p.add_argument("--category", action="append", default=[], help="keep only this category (repeatable)")
        p.add_argument("--seed", type=count(0, 2**32 - 1), default=42, help="sampling and split seed (default 42)")
        p.add_argument("--test-size", type=count(1, 10_000_000), default=2000, help="test items (default 2,000)")
        p.add_argument("--tokenizer", default="meta-llama/Meta-Llama-3.1-8B", help="tokenizer name or folder")
        p.add_argument("--min-tokens", type=count(1, 100_000), default=150, help="more tokens needed (default 150)")
        p.add_argument("--max-tokens", type=count(2, 100_000), default=160, help="cut to this many (default 160)")
        p.add_argument("--min-chars", type=count(0, 10_000_000), default=300,
                       help="more characters needed (default 300)")
        p.add_argument("--bucket-cap", type=count(1, 10_000_000), default=1200,
                       help="items per $1 price slot before sampling (default 1,200, the course's)")
        p.add_argument("--keep-from", type=count(1, 1000), default=240,
                       help="slots from this price up are kept whole (default 240, the course's)")
        p.add_argument("--skip-bad-lines", action="store_true",
                       help="count raw lines that are not JSON objects in the data card instead of stopping")

    def execute(self, args) -> int:
        import shlex

        from harness.curate import curate
        from harness.curate.clean import Rules

        folder = curate(args.out, name=args.name, raw=args.raw, hub_category=args.hub_category,
                        categories=args.category, seed=args.seed, test_size=args.test_size, tokenizer=args.tokenizer,
                        rules=Rules(args.min_tokens, args.max_tokens, args.min_chars), bucket_cap=args.bucket_cap,
                        keep_from=args.keep_from, skip_bad_lines=args.skip_bad_lines,
                        command=shlex.join(_command(args)))
        card = json.loads((folder / "data_card.json").read_text(encoding="utf-8"))["counts"]
        print(f"wrote {folder}: {card['test']:,} test + {card['train']:,} train items from {card['records']:,} "
              f"records ({card['kept']:,} kept, {card['deduplicated']:,} duplicates); see {folder / 'DATA_CARD.md'}\n"
              f"  pricebench run --task {folder / (args.name + '.yaml')} --data-dir {folder.parent} --model ...")
        return 0


def _command(args) -> list[str]:
    """The command line that rebuilds this folder, every default spelled out (for the data card)."""
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
    return parts
