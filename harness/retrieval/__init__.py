"""In-context examples: k-shot and retrieval-augmented prompts, from the task's train split only.

config.py (what a run shows: shots, selector, retriever, seed, chat format) -> select.py (which
train items each asked item is shown: a seeded random draw, or its nearest neighbours) ->
indexes.py (TF-IDF, BM25 and embedding indexes, cached by content hash) -> render.py (how the
shots enter the base and chat prompts, the same for every backend).
"""
from harness.retrieval.config import InContext, from_options, merge
from harness.retrieval.select import Shot, choose_shots, identity

__all__ = ["InContext", "Shot", "choose_shots", "from_options", "identity", "merge"]
