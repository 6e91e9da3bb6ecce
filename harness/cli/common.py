"""What every verb shares: the Verb base class, the options taken before or after any verb
(--data-dir, --store, --debug, --strict), -o key=value, the in-context flags, checked counts,
and how any failure becomes one `pricebench: ...` line (no traceback unless --debug).

A usage error is one `pricebench: error:` line like every other error (exit 2); an InputError
is exit 2, an OS error exit 1, Ctrl-C or SIGTERM exit 130 (errors.describe).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from contextlib import contextmanager
from typing import ClassVar

from harness.errors import InputError, describe


class Verb:
    """One verb (lm-eval's `_cli` SubCommand): its name and help, the arguments it takes
    (`add_arguments`, declared beside the handler) and the handler (`execute`, returning the
    exit code). Handlers import what they use inside themselves: `pricebench --help` stays fast
    and a verb's heavy dependencies load only when it runs."""

    name: ClassVar[str]
    help: ClassVar[str]
    many_stores: ClassVar[bool] = False     # True: reads several --store (report)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the verb's own arguments (the shared ones are added for it)."""

    def execute(self, args: argparse.Namespace) -> int:
        """Do the work; the exit code (a failure may also raise: run_verb turns it into one line)."""
        raise NotImplementedError

    def register(self, sub, shared: argparse.ArgumentParser, *, name: str | None = None, text: str | None = None,
                 command: str | None = None) -> argparse.ArgumentParser:
        """Add this verb to `sub` (an argparse subparsers action), as `name` (default its own), with the
        options every verb takes (`shared`); `command` is how errors name it ('export runs')."""
        text = text or self.help
        parser = sub.add_parser(name or self.name, parents=[shared], help=text, description=text)
        self.add_arguments(parser)
        parser.set_defaults(verb=self, command=command or name or self.name)
        return parser


class Group(Verb):
    """A verb with verbs under it (`pricebench export runs|eee|lm-eval`); with `flat_aliases`,
    each is also a top-level verb `GROUP-MEMBER` (`export-runs`), same arguments and handler."""

    members: ClassVar[tuple[type[Verb], ...]] = ()
    flat_aliases: ClassVar[bool] = False

    def register(self, sub, shared, *, name=None, text=None, command=None) -> argparse.ArgumentParser:
        """`GROUP` with its members under it, then (flat_aliases) each member again as `GROUP-MEMBER`."""
        parser = sub.add_parser(self.name, help=self.help, description=self.help)
        inner = parser.add_subparsers(dest=f"{self.name}_what", required=True, metavar="{" + ",".join(
            m.name for m in self.members) + "}")
        for member in self.members:
            member().register(inner, shared, command=f"{self.name} {member.name}")
        if self.flat_aliases:
            for member in self.members:
                alias = f"{self.name}-{member.name}"
                member().register(sub, shared, name=alias, command=alias,
                                  text=f"alias of `pricebench {self.name} {member.name}`: {member.help}")
        return parser


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one `pricebench: error:` line like every other error."""

    def error(self, message):
        self.exit(2, f"pricebench: error: {self.prog}: {message} (see {self.prog} --help)\n")


def count(low: int, high: int):
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


def shared_options(after_verb: bool) -> argparse.ArgumentParser:
    """Options every verb takes, before or after the verb (`pricebench --debug run ...` or `run ... --debug`)."""
    default = {"default": argparse.SUPPRESS} if after_verb else {}
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="offline data folder (default $PRICEBENCH_DATA; unset = Hugging Face hub)",
                        **default)
    # before the verb -> args.store, after it -> args.store_after: parse_args joins them (report takes several)
    common.add_argument("--store", action="append", dest="store_after" if after_verb else "store", metavar="DIR",
                        help="run store folder (default $PRICEBENCH_STORE or ./runs); `report` takes several",
                        **default)
    common.add_argument("--debug", action="store_true", help="show the full traceback of an error", **default)
    common.add_argument("--strict", action="store_true", **default,
                        help="tasks/run/finetune: a train item that duplicates an evaluation item by title or text "
                             "is an error (default: it is excluded and counted)")
    return common


def join_stores(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """`args.stores` lists every --store (before and after the verb); `args.store` is the one store
    of every verb but those that read several (report)."""
    args.stores = (getattr(args, "store", None) or []) + (getattr(args, "store_after", None) or [])
    if len(args.stores) > 1 and not args.verb.many_stores:
        parser.exit(2, f"pricebench: error: {args.command}: --store given {len(args.stores)} times (only report "
                       f"reads several stores)\n")
    args.store = args.stores[0] if args.stores else None
    return args


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


def add_in_context(p: argparse.ArgumentParser) -> None:
    """--shots and friends (harness/retrieval/config.py; default: the task's own `in_context:`)."""
    from harness.retrieval.config import FORMATS, MAX_SHOTS, RETRIEVERS, SELECTORS

    g = p.add_argument_group("in-context examples (docs/in-context.md; default: the task's own)")
    g.add_argument("--shots", type=count(0, MAX_SHOTS), metavar="K", help="K examples from the train split before "
                   "each item (0: zero-shot)")
    g.add_argument("--shot-selector", choices=SELECTORS, help="random (one seeded draw for the run) or nearest "
                   "(each item's most similar train items)")
    g.add_argument("--retriever", choices=RETRIEVERS, help="how nearest shots are found (default tfidf)")
    g.add_argument("--shot-seed", type=count(0, 2**32 - 1), metavar="N", help="seed of random shots (default 42)")
    g.add_argument("--shot-format", choices=FORMATS, help="chat prompt: the course's one RAG message (default), "
                   "or a user/assistant turn per example")


def in_context_args(args) -> dict:
    """The in-context flags given on the command line, as option keys (None: not given)."""
    return {key: getattr(args, key, None) for key in ("shots", "shot_selector", "retriever", "shot_seed",
                                                      "shot_format")}


def _interrupt(signum, frame):
    raise KeyboardInterrupt   # SIGTERM ends a run like Ctrl-C: what was predicted is saved


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM behaves like Ctrl-C while a verb runs (main thread only: signals are delivered there)."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run_verb(args: argparse.Namespace) -> int:
    """Run the verb's handler; any failure becomes one line on stderr and an exit code
    (the traceback with --debug)."""
    with sigterm_as_interrupt():
        try:
            return args.verb.execute(args)
        except (Exception, KeyboardInterrupt) as e:  # noqa: BLE001 - every failure becomes one line (or --debug)
            if args.debug:
                raise
            message, code = describe(e)
            print(f"pricebench: {message}", file=sys.stderr)
            return code
