"""Which train items each asked item is shown: random (one seeded draw, the same for every item
of a run) or its nearest neighbours in the train split (most similar first, as the course's RAG).

Only the task's train split is ever drawn from; the task already drops any train item that is an
evaluation item by id (an error) or by content (same normalized title or text). Here each shot is
checked again against the item being asked: never an evaluation item's id, never the same
normalized title or text (harness.data.content_keys), so even a task that skipped the guard
cannot show a model the answer.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from harness.data import Item, content_keys
from harness.errors import InputError
from harness.retrieval.config import InContext
from harness.retrieval.indexes import index_hash, load_index

SEARCH_MARGIN = 16             # extra neighbours fetched per item, so a few refused ones leave k


@dataclass(frozen=True)
class Shot:
    """A completed example: a train item (with its price), and the retriever's similarity to the
    asked item (nearest; None for random)."""

    item: Item
    score: float | None = None


def _allowed(candidate: Item, asked: Item, asked_keys: set, eval_ids: set) -> bool:
    return candidate.id not in eval_ids and candidate.id != asked.id and not asked_keys & set(content_keys(candidate))


def identity(task, ic: InContext) -> dict:
    """What a run's identity takes from its in-context setting (empty when there is none)."""
    if not ic.active:
        return {}
    from harness.retrieval.config import RENDER_VERSION

    ident = {"shots": ic.shots, "selector": ic.selector, "train_hash": task.train_hash, "render": RENDER_VERSION}
    if ic.selector == "nearest":
        ident.update(retriever=ic.retriever, index=index_hash(task.train_hash, ic.retriever))
    else:
        ident["seed"] = ic.seed
    if ic.format != "message":
        ident["format"] = ic.format
    return ident


def choose_shots(task, items: list[Item], ic: InContext, *, progress: bool | None = None,
                 refuse=None) -> tuple[dict, dict]:
    """({asked item id: (Shot, ...)}, info for the manifest), for every item of `items`.
    refuse: the ids never shown besides the evaluation slice's; default the asked items (evaluation
    items). A fine-tune's train examples are train items: it passes its validation ids (each example
    still never sees itself nor a copy of itself)."""
    if not ic.active or not items:
        return {item.id: () for item in items}, {}
    train = task.train_items()
    if ic.shots > len(train):
        raise InputError(f"{ic.shots} shots asked, but the train split has {len(train)} items", field="shots")
    refused = {item.id for item in items} if refuse is None else set(refuse)
    eval_ids = {item.id for item in task.eval_items()} | refused
    if ic.selector == "random":
        return _random(train, items, ic, eval_ids), {"train_items": len(train)}
    return _nearest(task, train, items, ic, eval_ids, progress)


def _random(train: list[Item], items: list[Item], ic: InContext, eval_ids: set) -> dict:
    """One seeded order of the whole train split; each item takes its first k allowed entries, so
    every item shares the same shots (and prompt prefix) unless one of them would copy it."""
    order = list(range(len(train)))
    random.Random(ic.seed).shuffle(order)
    chosen = {}
    for asked in items:
        keys = set(content_keys(asked))
        picks = []
        for n in order:
            if _allowed(train[n], asked, keys, eval_ids):
                picks.append(Shot(train[n]))
                if len(picks) == ic.shots:
                    break
        chosen[asked.id] = tuple(picks)
    return chosen


def _nearest(task, train: list[Item], items: list[Item], ic: InContext, eval_ids: set, progress) -> tuple[dict, dict]:
    index, info = load_index([item.text for item in train], task.train_hash, ic.retriever, progress=progress)
    want = min(len(train), ic.shots + SEARCH_MARGIN)
    indices, scores = index.search([item.text for item in items], want, progress=progress)
    chosen = {}
    for row, asked in enumerate(items):
        keys = set(content_keys(asked))
        picks = _take(train, indices[row], scores[row], asked, keys, eval_ids, ic.shots)
        n = want
        while len(picks) < ic.shots and n < len(train):        # many refused: look further for this item
            n = min(len(train), n * 4)
            more_indices, more_scores = index.search([asked.text], n)
            picks = _take(train, more_indices[0], more_scores[0], asked, keys, eval_ids, ic.shots)
        if len(picks) < ic.shots:
            raise InputError(f"only {len(picks)} train items may be shown with item {asked.id} "
                             f"({ic.shots} asked)", field="shots")
        chosen[asked.id] = tuple(picks)
    return chosen, {**info, "train_items": len(train)}


def _take(train, indices, scores, asked, keys, eval_ids, k) -> list[Shot]:
    picks = []
    for n, score in zip(indices, scores):
        if 0 <= n < len(train) and _allowed(train[n], asked, keys, eval_ids):
            picks.append(Shot(train[n], round(float(score), 6)))
            if len(picks) == k:
                break
    return picks
