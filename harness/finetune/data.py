"""What a fine-tune learns from: prompt/completion pairs out of the task's train split.

The prompt is the very text the evaluator sends (harness.prompts, the task's base template,
ending `Price is $`), the completion the course's rounded price (`f"{round(price)}.00"`, as in
its `make_prompt` / `make_prompts`), so the model learns to continue exactly what it will be
asked. A validation slice is held out of the train split, never out of the evaluation slice:
the train split is already leakage-guarded (evaluation ids are an error, content copies are
excluded), and `check_disjoint` checks train and validation again, by id and by content.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

from harness.data import Item, content_duplicates, parse_slice
from harness.errors import InputError
from harness.prompts import build_requests


def completion_for(price: float) -> str:
    """The course's training target: the price rounded to the dollar, written `NN.00`."""
    return f"{round(price)}.00"


@dataclass(frozen=True)
class Pair:
    item_id: str
    prompt: str
    completion: str
    price: float


@dataclass(frozen=True)
class FinetuneData:
    train: list[Pair]
    validation: list[Pair]
    train_excluded: int = 0            # train-split items left out as copies of evaluation items

    @property
    def data_hash(self) -> str:
        """A content hash of both lists, in order: part of the adapter id."""
        digest = hashlib.sha256()
        for name, pairs in (("train", self.train), ("validation", self.validation)):
            digest.update(name.encode() + b"\n")
            for p in pairs:
                digest.update(json.dumps([p.item_id, p.prompt, p.completion, p.price], ensure_ascii=False).encode())
                digest.update(b"\n")
        return digest.hexdigest()[:16]

    def texts_and_prices(self, which: str) -> list[tuple[str, float]]:
        """(prompt, price) pairs: what the regression objective trains on."""
        return [(p.prompt, p.price) for p in getattr(self, which)]


def check_disjoint(pairs_items: list[Item], evaluation: list[Item], *, what: str) -> None:
    """Refuse any overlap with the evaluation slice, by id or by normalized title / text."""
    eval_ids = {item.id for item in evaluation}
    leaked = [item.id for item in pairs_items if item.id in eval_ids]
    copies = content_duplicates(pairs_items, evaluation)
    if leaked or copies:
        first = leaked[0] if leaked else f"{pairs_items[copies[0][0]].id} (same {copies[0][2]} as {copies[0][1].id})"
        raise InputError(f"{what} overlaps the evaluation slice: {first}", field=what)


def split_items(items: list[Item], *, train, validation: int, seed: int) -> tuple[list[Item], list[Item]]:
    """(train items, validation items): validation is a seeded sample of the train split; train is a
    seeded sample of the rest (a count), a slice of the rest in task order ("START:END"), or all of it."""
    if validation >= len(items):
        raise InputError(f"validation takes {validation} of the {len(items)} train items: nothing left to train on",
                         field="data.validation")
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    held = set(order[:validation])
    rest_shuffled = [items[i] for i in order[validation:]]
    if train == "all":
        chosen = [item for n, item in enumerate(items) if n not in held]
    elif isinstance(train, int):
        chosen = rest_shuffled[:train]
    else:
        chosen = [item for n, item in enumerate(items) if n not in held][parse_slice(train, field="data.train")]
    if not chosen:
        raise InputError(f"data.train {train!r} selects no items", field="data.train")
    return chosen, [items[i] for i in order[:validation]]


def _pairs(task, items: list[Item], recipe, refuse=()) -> list[Pair]:
    """The items as the evaluator will ask them. A recipe with `in_context` shows each its nearest (or
    random) train items as the evaluator's shots, chosen by the same code with the same guard: never the
    item itself, an evaluation item, a copy of either, nor an id in `refuse` (the validation items)."""
    if recipe.in_context:
        from harness.prompts import in_context_requests

        requests = in_context_requests(task, items, "base", recipe.shots, refuse=set(refuse))
    else:
        requests = build_requests(task, items, "base")
    return [Pair(r.item.id, r.prompt, completion_for(r.item.price), r.item.price) for r in requests]


def training_items(task, recipe) -> tuple[list[Item], list[Item]]:
    """(train items, validation items) of the recipe on `task`, each checked apart from its evaluation slice."""
    train, validation = split_items(task.train_items(), train=recipe.train, validation=recipe.validation,
                                    seed=recipe.seed)
    evaluation = task.eval_items()
    check_disjoint(train, evaluation, what="train")
    check_disjoint(validation, evaluation, what="validation")
    return train, validation


def build_data(task, recipe) -> FinetuneData:
    """The recipe's train and validation pairs on `task` (a harness.tasks.Task)."""
    train, validation = training_items(task, recipe)
    held_out = {item.id for item in validation}
    return FinetuneData(train=_pairs(task, train, recipe, refuse=held_out), validation=_pairs(task, validation, recipe),
                        train_excluded=len(task.train_excluded))
