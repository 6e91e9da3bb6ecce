"""The kinds of leaderboard rows: one table for predictors, the report and the docs.

Every predictor sets its `kind` through `known_kind` (a typo fails at import); the report takes
from here which rows it highlights as references, each kind's chart colour and its legend; and
docs/leaderboards.md lists exactly these kinds (tests/test_kinds.py checks all three). A kind
read from a data file or a manifest that is not in the table is still shown, as written, in
NEUTRAL_COLOUR: data never makes a report fail.
"""
from __future__ import annotations

from dataclasses import dataclass

NEUTRAL_COLOUR = "#b4b9c2"      # a kind the table does not know


@dataclass(frozen=True)
class Kind:
    key: str                    # what manifests, references.jsonl and task YAML files say
    label: str                  # the legend's words
    description: str            # the docs' and tooltips' words
    colour: str                 # its bars' colour in the leaderboard chart
    reference: str | None = None    # 'human' / 'frontier': a reference row the leaderboard highlights


KINDS: tuple[Kind, ...] = (
    Kind("human", "human", "A person guessing the prices (the course author's recorded guesses).", "#e0a800",
         "human"),
    Kind("frontier", "frontier model", "A closed model behind a provider's API, zero-shot (GPT-4o, Claude): "
         "`openai:`, `anthropic:`.", "#3b5bdb", "frontier"),
    Kind("frontier-finetuned", "frontier model, fine-tuned", "A provider's fine-tuned model "
         "(`openai:ft:...`).", "#748ffc", "frontier"),
    Kind("frontier-rag", "frontier model + RAG", "A frontier model shown similar training items with their "
         "prices (retrieval-augmented; recorded course run).", "#1c2f8a", "frontier"),
    Kind("ensemble", "ensemble", "A combination of several models' guesses (recorded course run).", "#9c36b5"),
    Kind("open-base", "open model, base", "Open weights without a chat template, base-completion prompt "
         "(`hf:`, `vllm:`).", "#2b8a3e"),
    Kind("open-instruct", "open model, instruct", "Open weights with a chat template (instruct or chat tuned; "
         "`hf:`, `vllm:` with the chat prompt).", "#51cf66"),
    Kind("open-finetuned", "open model, fine-tuned", "Open weights with a fine-tuned adapter (LoRA, QLoRA: "
         "`hf:` with `adapter`, `vllm:` with `lora`).", "#0b5a2a"),
    Kind("open-served", "open model, served", "A model behind an OpenAI-compatible server (`openai:` with "
         "`base_url`: vLLM serve, transformers serve, llama.cpp, Ollama).", "#8ce99a"),
    Kind("baseline", "baseline", "A classical model fitted on the train split, or a trivial rule "
         "(`baseline:`).", "#868e96"),
    Kind("model", "model", "A predictor that declares no kind of its own (a plug-in backend).", "#ced4da"),
    Kind("reference", "reference", "A published figure whose source names no kind.", "#d0bfff"),
)
KIND_BY_KEY = {k.key: k for k in KINDS}


def known_kind(key: str) -> str:
    """`key`, checked against the table: how a predictor declares its kind."""
    if key not in KIND_BY_KEY:
        raise ValueError(f"unknown kind {key!r} (known: {', '.join(KIND_BY_KEY)}): add it to harness/kinds.py")
    return key


def kind_colour(key) -> str:
    """The chart colour of a kind; NEUTRAL_COLOUR for one the table does not know."""
    kind = KIND_BY_KEY.get(key) if isinstance(key, str) else None
    return kind.colour if kind else NEUTRAL_COLOUR


def reference_group(key) -> str | None:
    """'human' / 'frontier' for the rows every model is measured against, else None."""
    kind = KIND_BY_KEY.get(key) if isinstance(key, str) else None
    return kind.reference if kind else None
