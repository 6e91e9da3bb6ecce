"""`pricebench options BACKEND`: the options a backend takes (`-o key=value`, a leaderboard
entry's `options:`), read from the backend's own declaration (harness/predictors/options.py):
type and allowed values, default, and whether the option enters the run id (runtime-only
options, such as speed settings, do not)."""
from __future__ import annotations

import json

from harness.cli.common import Verb
from harness.errors import InputError


class Options(Verb):
    name = "options"
    help = "list a backend's options (-o KEY=VALUE): type, allowed values, default, whether it enters the run id"

    def add_arguments(self, p) -> None:
        p.add_argument("backend", nargs="?", metavar="BACKEND",
                       help="hf, vllm, openai, anthropic, baseline, reference, finetune, ... (omit: list them); "
                            "a model name such as hf:gemma-3-270m is read as its backend")
        p.add_argument("--json", action="store_true", help="print the options as JSON")

    def execute(self, args) -> int:
        from harness.predictors import BACKENDS

        if not args.backend:
            print(f"backends: {', '.join(BACKENDS)}\n(pricebench options BACKEND lists one's options)")
            return 0
        backend = args.backend.split(":", 1)[0]
        rows = option_table(backend)
        if args.json:
            print(json.dumps([{**row, "default": _jsonable(row["default"])} for row in rows], indent=2))
            return 0
        print(f"{backend} options: pricebench run -o KEY=VALUE, or a leaderboard entry's options:\n"
              f"(run id: yes = another value is another run; no = runtime only, e.g. speed: the same run;\n"
              f" varies = runtime, but in the run id where the note under it says)")
        name_width = max(len(row["name"]) for row in rows + [{"name": "option"}])
        default_width = max(len(_shown(row["default"])) for row in rows + [{"default": "default"}])
        print(f"  {'option':<{name_width}}  run id  {'default':<{default_width}}  values")
        for row in rows:
            enters = "yes" if row["identity"] else "varies" if row.get("identity_when") else "no"
            print(f"  {row['name']:<{name_width}}  {enters:<6}  {_shown(row['default']):<{default_width}}  "
                  f"{row['expected']}")
            if row["description"]:
                print(f"  {'':<{name_width}}  {row['description']}")
            if row.get("identity_when"):
                print(f"  {'':<{name_width}}  in the run id where {row['identity_when']}")
        return 0


def option_table(backend: str) -> list[dict]:
    """The backend's option declaration as rows (Options.table); an unknown backend is an InputError."""
    from harness.predictors import BACKENDS, Predictor, predictor_class
    from harness.yamlspec import did_you_mean

    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}{did_you_mean(backend.lower(), list(BACKENDS))}; "
                         f"backends: {', '.join(BACKENDS)}", field="backend")
    return (predictor_class(backend) or Predictor).Options.table()


def _jsonable(value):
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _shown(value) -> str:
    return "unset" if value is None else value if isinstance(value, str) else json.dumps(_jsonable(value))
