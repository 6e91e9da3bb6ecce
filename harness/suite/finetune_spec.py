"""Fine-tunes in a leaderboard spec: `model: finetune:<recipe>`, the base axis `finetune: {recipe,
bases, overrides}` and the `checkpoints:` key.

A recipe named in a leaderboard is checked when the leaderboard loads (an unknown name gets a
"did you mean", a bad recipe its own file:line:field error, a bad base or override the
leaderboard's line), so a suite never starts a training it would refuse later. A recipe path is
resolved beside the leaderboard file, as task paths are. `finetune: {recipe: R, bases: [A, B]}` is
`model: finetune:R` with `options: {base: A}`, then `{base: B}` (a base equal to the recipe's own
is left out of the options: the same run as `model: finetune:R`); `overrides` go into the options
as they are (harness/finetune/variants.py).
"""
from __future__ import annotations

from pathlib import Path

from harness.yamlspec import Spec, check_keys, did_you_mean

BACKEND = "finetune"
CHECKPOINT_WORDS = ("all", "none")
ENTRY_KEYS = {"recipe", "bases", "overrides"}


def is_finetune(model: str) -> bool:
    return model.split(":", 1)[0] == BACKEND


def variants(spec: Spec, entry: dict, n: int) -> list[tuple[str, dict]]:
    """(model, options) per base of a `finetune: {recipe, bases, overrides}` entry, each checked."""
    node, keys = entry["finetune"], ("models", n, "finetune")
    if "model" in entry:
        raise spec.error("give either model or finetune, not both", *keys)
    if not isinstance(node, dict):
        raise spec.error("must be a mapping {recipe, bases, overrides}", *keys)
    check_keys(spec, node, ENTRY_KEYS, *keys)
    recipe = spec.require(*keys, "recipe", kind=str)
    options = entry.get("options") or {}
    if not isinstance(options, dict):
        raise spec.error("must be a mapping of backend options", "models", n, "options")
    for key in ("base", "overrides"):
        if key in options:
            raise spec.error(f"give it as finetune.{key}{'s' if key == 'base' else ''}", "models", n, "options", key)
    bases = node.get("bases")
    bases = [bases] if isinstance(bases, str) else bases
    if bases is not None and (not isinstance(bases, list) or not bases):
        raise spec.error("must be a list of hf: model specs", *keys, "bases")
    overrides = node.get("overrides")
    extra = {"overrides": overrides} if overrides is not None else {}
    out = []
    for i, base in enumerate(bases or [None]):
        where = (*keys, "bases", i)
        model, own = resolve_finetune(spec, f"{BACKEND}:{recipe}", *keys, "recipe", base=base, overrides=overrides,
                                      base_at=where, overrides_at=(*keys, "overrides"))
        given = {"base": base} if base is not None and base != own else {}
        out.append((model, {**options, **given, **extra}))
    return out


def resolve_finetune(spec: Spec, model: str, *keys, base=None, overrides=None, base_at=(),
                     overrides_at=()) -> tuple[str, str | None]:
    """(`finetune:<recipe>` with the recipe checked and a path made absolute, beside the leaderboard; the
    recipe file's own base as a plain spec, None for a template or a base with options). `base` and
    `overrides` are checked with it; an error in them names `base_at` or `overrides_at`.<name>."""
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
        own = load_recipe(target)
        recipe = load_recipe(target, base=base, overrides=overrides) if base or overrides else own
    except InputError as e:
        if e.field == "base" and base is not None:
            raise spec.error(e.reason, *base_at) from None
        if (e.field or "").startswith("overrides"):
            raise spec.error(e.reason, *overrides_at, *e.field.split(".")[1:]) from None
        if e.path is None:          # not about a line of the recipe file: say where the leaderboard named it
            raise spec.error(e.reason, *keys) from None
        raise
    if recipe.base is None:
        raise spec.error(f"recipe {recipe.name} is a template (it names no base): use finetune: {{recipe: "
                         f"{recipe.name}, bases: [hf:...]}}", *keys)
    return f"{BACKEND}:{target}", own.base if not own.base_options else None


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
