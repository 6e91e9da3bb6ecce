"""Fine-tunes in a leaderboard spec: `model: finetune:<recipe>` and its `checkpoints:` key.

A recipe named in a leaderboard is checked when the leaderboard loads (an unknown name gets a
"did you mean", a bad recipe its own file:line:field error), so a suite never starts a training
it would refuse later. A recipe path is resolved beside the leaderboard file, as task paths are.
"""
from __future__ import annotations

from pathlib import Path

from harness.yamlspec import Spec, did_you_mean

BACKEND = "finetune"
CHECKPOINT_WORDS = ("all", "none")


def is_finetune(model: str) -> bool:
    return model.split(":", 1)[0] == BACKEND


def resolve_finetune(spec: Spec, model: str, *keys) -> str:
    """`finetune:<recipe>` with the recipe checked (and a path made absolute, beside the leaderboard)."""
    from harness.errors import InputError
    from harness.finetune.recipe import load_recipe, recipe_files

    target = model.split(":", 1)[1]
    if target.endswith((".yaml", ".yml")):
        path = Path(target).expanduser()
        if not path.is_absolute():
            path = (spec.path.parent / path).resolve()
        if not path.is_file():
            raise spec.error(f"recipe file {path} not found", *keys)
        target = str(path)
    else:
        known = recipe_files()
        if target not in known:
            raise spec.error(f"unknown recipe {target!r}{did_you_mean(target, known)} (known: "
                             f"{', '.join(known) or 'none'}; or a path to a recipe .yaml)", *keys)
    try:
        load_recipe(target)
    except InputError as e:
        if e.path is None:          # not about a line of the recipe file: say where the leaderboard named it
            raise spec.error(e.reason, *keys) from None
        raise
    return f"{BACKEND}:{target}"


def checkpoints(spec: Spec, entry: dict, model: str, *keys) -> tuple:
    """The entry's `checkpoints`: () (none: the final adapter only), ("all",), or step numbers in order."""
    if "checkpoints" not in entry:
        return ()
    value = entry["checkpoints"]
    where = (*keys, "checkpoints")
    if not is_finetune(model):
        raise spec.error("only a finetune:<recipe> model has checkpoints", *where)
    if "checkpoint" in (entry.get("options") or {}):
        raise spec.error("give either options.checkpoint (one checkpoint) or checkpoints, not both", *where)
    if value is None or value is False or value == "none":
        return ()
    if isinstance(value, str):
        if value != "all":
            raise spec.error(f"must be all, none or a list of step numbers, got {value!r}"
                             f"{did_you_mean(value, CHECKPOINT_WORDS)}", *where)
        return ("all",)
    if not isinstance(value, list) or not value:
        raise spec.error("must be all, none or a non-empty list of step numbers", *where)
    for i, step in enumerate(value):
        if isinstance(step, bool) or not isinstance(step, int) or not 1 <= step <= 10**9:
            raise spec.error(f"must be a step number between 1 and 1,000,000,000, got {step!r}", *where, i)
    if len(set(value)) != len(value):
        raise spec.error("lists a step twice", *where)
    return tuple(sorted(value))
