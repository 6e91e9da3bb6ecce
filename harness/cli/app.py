"""The `pricebench` command line: the verb table, the parser built from it, and `main`.

Adding a verb is one file (a `Verb` subclass: its arguments beside its handler; see common.py)
plus one line in VERBS below.
"""
from __future__ import annotations

import argparse

from harness.cli import data, exports, finetune, options, run, suite
from harness.cli.common import Parser, join_stores, run_verb, shared_options

DESCRIPTION = "pricebench: how well does each model guess a product's price from its description?"

VERBS = (
    data.Tasks, run.Run, run.Show, run.Compare, run.Verify,
    suite.Suite, suite.Report,
    exports.Export, exports.Import,
    data.Curate, finetune.Finetune,
    options.Options,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pricebench", description=DESCRIPTION, parents=[shared_options(after_verb=False)])
    sub = parser.add_subparsers(dest="command", required=True)
    after = shared_options(after_verb=True)
    for verb in VERBS:
        verb().register(sub, after)
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """The command line as a namespace: `args.verb` runs it; `args.store` / `args.stores` see common.join_stores."""
    parser = build_parser()
    return join_stores(parser, parser.parse_args(argv))


def main(argv=None) -> int:
    """`pricebench ARGS`: the exit code (0 done, 1 failed, 2 bad input or usage, 130 interrupted)."""
    try:
        args = parse_args(argv)
    except SystemExit as e:          # usage errors (exit 2) and --help (exit 0)
        return e.code if isinstance(e.code, int) else 2
    return run_verb(args)

