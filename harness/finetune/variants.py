"""One recipe, many fine-tunes: another base (`bases:` in a leaderboard, `--base`, `-o base=`) and
a few settings a user varies (`overrides:`), without a file per variant.

The variant is the recipe file with the new values written in and checked by the same schema
(harness/finetune/recipe.py), so an override is refused exactly as the same value in the file
would be, and the adapter id is that of a file saying it: a recipe whose base is X and the
template with base X give one adapter. An error names `base` or `overrides.<name>`; the caller
says where the user wrote it (a leaderboard's file:line, a CLI flag).
"""
from __future__ import annotations

import copy

from harness.errors import InputError
from harness.yamlspec import Spec, did_you_mean

# The settings an override may change: its name -> where it sits in a recipe.
OVERRIDES = {"max_steps": ("training", "max_steps"), "epochs": ("training", "epochs"),
             "learning_rate": ("training", "learning_rate"), "batch_size": ("training", "batch_size"),
             "warmup_ratio": ("training", "warmup_ratio"), "seed": ("training", "seed"),
             "train_size": ("data", "train"), "in_context": ("in_context",)}


def check_names(overrides) -> None:
    """Refuse an override that is not one of OVERRIDES (a typo must not train the recipe unchanged)."""
    if not isinstance(overrides, dict):
        raise InputError(f"must be a mapping of settings ({', '.join(OVERRIDES)})", field="overrides")
    unknown = [key for key in overrides if key not in OVERRIDES]
    if unknown:
        raise InputError(f"unknown setting{did_you_mean(unknown[0], OVERRIDES)} (known: {', '.join(OVERRIDES)})",
                         field=f"overrides.{unknown[0]}")


def customize(spec: Spec, base: str | None, overrides: dict | None, validate):
    """The Recipe of `spec` with `base` (an hf: spec, replacing the file's base and its options) and
    `overrides` written in, checked by `validate` (recipe.py's schema, passed in: recipe.py calls this)."""
    overrides = dict(overrides or {})
    check_names(overrides)
    changed = Spec(copy.deepcopy(dict(spec)))
    changed.path, changed.lines = spec.path, spec.lines
    where = {}
    if base is not None:
        changed["base"], where[("base",)] = base, "base"
    for key, value in overrides.items():
        *parents, last = OVERRIDES[key]
        node = changed
        for parent in parents:
            if node.get(parent) is None:
                node[parent] = {}
            node = node[parent] if isinstance(node[parent], dict) else {}    # not a mapping: the schema says so
        node[last] = value
        where[OVERRIDES[key]] = f"overrides.{key}"
    try:
        return validate(changed)
    except InputError as e:
        keys = tuple((e.field or "").split("."))
        culprit = next((name for path, name in where.items() if keys[:len(path)] == path), None)
        if culprit is None:
            raise
        raise InputError(e.reason, field=culprit) from None
