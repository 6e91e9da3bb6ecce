"""What the `pricebench` command line accepts: its verbs, their arguments, and -o key=value.

A usage error is one `pricebench: error:` line like every other error; counts are checked
ranges; --data-dir, --store and --debug are taken before or after the verb (`report` takes
several --store).
"""
from __future__ import annotations

import argparse
import json

from harness.errors import InputError

DESCRIPTION = "pricebench: how well does each model guess a product's price from its description?"


def parse_options(pairs: list[str]) -> dict:
    """--option key=value (value parsed as JSON when it can be: numbers, true/false, lists)."""
    options = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise InputError(f"expected key=value, got {pair!r}", field="--option")
        key, value = pair.split("=", 1)
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
        except (ValueError, RecursionError):      # a 5,000-digit number, a 100,000-deep list
            raise InputError(f"value of {key!r} is not usable (too long or too deeply nested)",
                             field=key) from None
    return options


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one `pricebench: error:` line like every other error."""

    def error(self, message):
        self.exit(2, f"pricebench: error: {self.prog}: {message} (see {self.prog} --help)\n")


def _count(low: int, high: int):
    """An argparse type: a whole number in [low, high]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high:,}, got {value}")
        return value
    parse.__name__ = "count"
    return parse


def _common(suppress: bool) -> argparse.ArgumentParser:
    """Options every verb takes, before or after the verb (`pricebench --debug run ...` or `run ... --debug`)."""
    default = {"default": argparse.SUPPRESS} if suppress else {}
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="offline data folder (default $PRICEBENCH_DATA; unset = Hugging Face hub)",
                        **default)
    # before the verb -> args.store, after it -> args.store_after: parse_args joins them (report takes several)
    common.add_argument("--store", action="append", dest="store_after" if suppress else "store", metavar="DIR",
                        help="run store folder (default $PRICEBENCH_STORE or ./runs); `report` takes several",
                        **default)
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error", **default)
    common.add_argument("--strict", action="store_true", **default,
                        help="tasks/run: a train item that duplicates an evaluation item by title or text is an "
                             "error (default: it is excluded and counted)")
    return common


def _in_context(p: argparse.ArgumentParser) -> None:
    """--shots and friends (harness/retrieval/config.py; default: the task's own `in_context:`)."""
    from harness.retrieval.config import FORMATS, MAX_SHOTS, RETRIEVERS, SELECTORS

    g = p.add_argument_group("in-context examples (docs/in-context.md; default: the task's own)")
    g.add_argument("--shots", type=_count(0, MAX_SHOTS), metavar="K", help="K examples from the train split before "
                   "each item (0: zero-shot)")
    g.add_argument("--shot-selector", choices=SELECTORS, help="random (one seeded draw for the run) or nearest "
                   "(each item's most similar train items)")
    g.add_argument("--retriever", choices=RETRIEVERS, help="how nearest shots are found (default tfidf)")
    g.add_argument("--shot-seed", type=_count(0, 2**32 - 1), metavar="N", help="seed of random shots (default 42)")
    g.add_argument("--shot-format", choices=FORMATS, help="chat prompt: the course's one RAG message (default), "
                   "or a user/assistant turn per example")


def in_context_args(args) -> dict:
    """The in-context flags given on the command line, as option keys (None: not given)."""
    return {key: getattr(args, key, None) for key in ("shots", "shot_selector", "retriever", "shot_seed",
                                                      "shot_format")}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pricebench", description=DESCRIPTION, parents=[_common(False)])
    sub = parser.add_subparsers(dest="command", required=True)
    verb = _common(True)

    def add(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[verb], **kwargs)

    add("tasks", help="list the registered tasks")

    p = add("run", help="run a model on a task (or reuse the stored run)")
    p.add_argument("--task", required=True, help="task name or path to a task YAML")
    p.add_argument("--model", required=True, help="backend:name, e.g. reference:human, hf:<checkpoint>")
    p.add_argument("--quant", default="none", choices=["none", "8bit", "4bit"])
    p.add_argument("--prompt", choices=["base", "chat"], help="prompt style (default: the backend's)")
    p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE", help="backend option, repeatable")
    p.add_argument("--slice", help="evaluation slice, e.g. 0:250 or all (default: the task's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--allow-mixed", action="store_true",
                   help="resume even if the environment that can change replies differs (the run is marked mixed)")
    _in_context(p)

    p = add("show", help="metrics, CI and worst misses of a stored run")
    p.add_argument("run", help="run id or unique prefix")
    p.add_argument("--worst", type=_count(0, 10_000), default=10, help="how many worst misses to list (default 10)")

    p = add("verify", help="recompute N random items of a stored run from scratch: do the replies match?")
    p.add_argument("run", help="run id or unique prefix")
    p.add_argument("--items", type=_count(1, 100_000), default=32, help="how many items (default 32)")
    p.add_argument("--seed", type=_count(0, 2**31), default=0, help="which items (default 0)")
    p.add_argument("--task", help="the task YAML the run used, when it is not a registered task")
    p.add_argument("--option", "-o", action="append", metavar="KEY=VALUE",
                   help="override a stored option (e.g. batch_size=16): verify under another environment")

    p = add("compare", help="paired bootstrap: is run A better than run B?")
    p.add_argument("run_a")
    p.add_argument("run_b")

    p = add("suite", help="run a leaderboard's job matrix (skipping finished runs), then build its report")
    p.add_argument("leaderboard", help="path to a leaderboard YAML, e.g. leaderboards/course.yaml")
    p.add_argument("--dry-run", action="store_true", help="list each job as cached / partial / to-run; run nothing")
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--address", help="Ray cluster address (default: a local Ray started on the fly)")
    p.add_argument("--only", action="append", metavar="GLOB", help="only models matching, e.g. 'reference:*' (repeatable)")
    p.add_argument("--out", help="report folder (default reports/<leaderboard name>)")
    p.add_argument("--no-report", action="store_true", help="run the jobs, skip the report")

    p = add("report", help="build the static HTML report of a leaderboard (or of a whole store)")
    p.add_argument("leaderboard", nargs="?", help="leaderboard YAML; omit it to report every run in --store")
    p.add_argument("--out", help="report folder (default reports/<leaderboard name>)")
    p.add_argument("--name", default="store", help="report name when reporting a whole store (default: store)")

    p = add("export-runs", help="write runs of the store (by id, or a leaderboard's) to one bundle file")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run id or unique prefix, or a leaderboard YAML")
    p.add_argument("file", metavar="FILE", help="the bundle to write (.tar.gz); replaces only a bundle it wrote")

    p = add("import", help="merge a bundle of runs (export-runs) into the store")
    p.add_argument("file", metavar="FILE", help="a bundle written by pricebench export-runs")

    p = add("export-lm-eval", help="write a task folder that `lm_eval --include_path` runs")
    p.add_argument("task", help="task name or path to a task YAML")
    p.add_argument("dir", help="output folder")
    p.add_argument("--slice", help="evaluation slice (default: the task's)")
    p.add_argument("--max-new-tokens", type=_count(1, 4096), default=6, help="generation budget (default 6, as hf:)")
    p.add_argument("--prompt", choices=["base", "chat"], default="base",
                   help="base completion prompt, or the chat prompt (run with lm_eval --apply_chat_template)")
    _in_context(p)

    p = add("export-eee", help="write stored runs, or a leaderboard's, as Every Eval Ever files (schema 0.3.0)")
    p.add_argument("sources", nargs="+", metavar="RUN_ID | LEADERBOARD.yaml",
                   help="run ids (or unique prefixes), or one leaderboard YAML (its complete runs and published rows)")
    p.add_argument("out", metavar="OUT_DIR", help="output folder (new, empty, or written by an earlier export-eee)")

    p = add("finetune", help="fine-tune a model on a task's train split (LoRA / QLoRA / full): cached, resumable")
    p.add_argument("recipe", help="recipe name (finetunes/<name>.yaml) or path to a recipe YAML")
    p.add_argument("--task", help="task name or path to a task YAML (default: the recipe's task)")
    p.add_argument("--base", help="the hf: model to train (replaces the recipe's base; a template needs it)")
    p.add_argument("--max-steps", type=_count(1, 10_000_000),
                   help="stop after N optimizer steps (overrides the recipe's; part of the adapter id)")
    p.add_argument("--adapters", help="adapter cache folder (default $PRICEBENCH_ADAPTERS or <cache>/adapters)")
    p.add_argument("--threads", type=_count(1, 4096), help="CPU threads (overrides the recipe's; not in the adapter id)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = add("curate", help="build a task folder from raw Amazon Reviews 2023 metadata (the course's rules)")
    p.add_argument("out", help="folder to write OUT/NAME/ into (use OUT as --data-dir for the task)")
    p.add_argument("--name", required=True, help="task name (folder, file and id prefix)")
    p.add_argument("--raw", action="append", default=[], metavar="FILE.jsonl",
                   help="raw meta_<Category>.jsonl file, repeatable (category from the name, else main_category)")
    p.add_argument("--hub-category", help="download raw/meta_categories/meta_<CATEGORY>.jsonl of "
                                          "McAuley-Lab/Amazon-Reviews-2023")
    p.add_argument("--category", action="append", default=[], help="keep only this category (repeatable)")
    p.add_argument("--seed", type=_count(0, 2**32 - 1), default=42, help="sampling and split seed (default 42)")
    p.add_argument("--test-size", type=_count(1, 10_000_000), default=2000, help="test items (default 2,000)")
    p.add_argument("--tokenizer", default="meta-llama/Meta-Llama-3.1-8B", help="tokenizer name or folder")
    p.add_argument("--min-tokens", type=_count(1, 100_000), default=150, help="more tokens needed (default 150)")
    p.add_argument("--max-tokens", type=_count(2, 100_000), default=160, help="cut to this many (default 160)")
    p.add_argument("--min-chars", type=_count(0, 10_000_000), default=300, help="more characters needed (default 300)")
    p.add_argument("--bucket-cap", type=_count(1, 10_000_000), default=1200,
                   help="items per $1 price slot before sampling (default 1,200, the course's)")
    p.add_argument("--keep-from", type=_count(1, 1000), default=240,
                   help="slots from this price up are kept whole (default 240, the course's)")
    p.add_argument("--skip-bad-lines", action="store_true",
                   help="count raw lines that are not JSON objects in the data card instead of stopping")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line; `args.stores` lists every --store (before and after the verb), and
    `args.store` is the one store of every verb but `report` (which reads several)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.stores = (getattr(args, "store", None) or []) + (getattr(args, "store_after", None) or [])
    if len(args.stores) > 1 and args.command != "report":
        parser.exit(2, f"pricebench: error: {args.command}: --store given {len(args.stores)} times (only report "
                       f"reads several stores)\n")
    args.store = args.stores[0] if args.stores else None
    return args
