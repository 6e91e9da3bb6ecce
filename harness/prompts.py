"""How an item becomes a prompt: the course's base-model completion, or chat messages.

Base models continue `...Price is $`; chat models get a system + user message that asks
for a number, with the assistant's turn started as `Price is $` (the course's frontier
prompt; an empty system message is left out, as in the 2025 edition's prompt). A task may
cut the base prompt's text to N tokens of a named tokenizer (`prompts.truncate`). Both
renderings are hashed into the run identity and per item.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from harness.data import Item
from harness.errors import InputError

STYLES = ("base", "chat")


def render_base(template: str, item: Item) -> str:
    return template.replace("{text}", item.text)


def render_chat(template: dict, item: Item) -> list[dict]:
    messages = [{"role": "system", "content": template["system"]}] if template.get("system") else []
    messages.append({"role": "user", "content": template["user"].replace("{text}", item.text)})
    if template.get("assistant_prefix"):
        messages.append({"role": "assistant", "content": template["assistant_prefix"]})
    return messages


@dataclass(frozen=True)
class Request:
    """One item to price, rendered in the style its predictor asked for."""

    item: Item
    style: str
    prompt: str | None = None           # base style: the completion prompt
    messages: tuple | None = None       # chat style: ({"role", "content"}, ...)
    shots: tuple = ()                   # in-context examples shown (harness.retrieval.Shot), if any

    @property
    def prompt_hash(self) -> str:
        payload = self.prompt if self.style == "base" else json.dumps(self.messages, ensure_ascii=False)
        return hashlib.sha256((payload or "").encode()).hexdigest()[:12]


def load_tokenizer(name: str, *, path=None, field="prompts.truncate.tokenizer"):
    """A tokenizer by hub name or local folder (transformers' AutoTokenizer), or one InputError."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise InputError(f"tokenizer {name!r}: transformers is not installed (pip install transformers)",
                         path=path, field=field) from None
    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as e:  # noqa: BLE001 - offline, gated or missing: one line naming the field
        first = " ".join(str(e).split())[:160]
        raise InputError(f"tokenizer {name!r} is not available (offline or gated? give a local folder): {first}",
                         path=path, field=field) from None


def truncate_items(task, items) -> list[Item]:
    """The base prompt's cut: each text's first N tokens of the named tokenizer (encoded without
    special tokens, decoded back), as the 2025 edition's fine-tuned Llama saw it."""
    cut = getattr(task, "truncate", None)
    if not cut:
        return list(items)
    tokenizer = load_tokenizer(cut["tokenizer"], path=task.spec.path)
    out = []
    for item in items:
        ids = tokenizer.encode(item.text, add_special_tokens=False)
        text = item.text if len(ids) <= cut["tokens"] else \
            tokenizer.decode(ids[:cut["tokens"]], skip_special_tokens=True)
        out.append(dataclasses.replace(item, text=text))
    return out


def build_requests(task, items, style: str, *, reads_prompt: bool = True,
                   progress: bool | None = None) -> list[Request]:
    """reads_prompt=False (recorded runs, baselines: they see the item, not the prompt) skips the
    tokenizer cut, so such a run needs no tokenizer. A task with in-context examples
    (`task.in_context`) gets them in every prompt (harness/retrieval/render.py)."""
    if style not in STYLES:
        raise ValueError(f"prompt style must be one of {STYLES}, got {style!r}")
    in_context = getattr(task, "in_context", None)
    if in_context is not None and in_context.active:
        return in_context_requests(task, items, style, in_context, reads_prompt=reads_prompt, progress=progress)
    if style == "base":
        originals = list(items)
        shown = truncate_items(task, originals) if reads_prompt else originals
        return [Request(item, "base", prompt=render_base(task.base_template, cut))
                for item, cut in zip(originals, shown)]
    return [Request(item, "chat", messages=tuple(render_chat(task.chat_template, item))) for item in items]


def in_context_requests(task, items, style: str, ic, *, reads_prompt: bool = True, progress=None,
                        refuse=None) -> list:
    """build_requests for a task with in-context examples: the shots of each item (retrieval/select.py;
    `refuse`: see choose_shots), rendered (retrieval/render.py); a base prompt cuts the shots' texts as
    it cuts the asked item's (`prompts.truncate`)."""
    from harness.retrieval.render import base_prompt, chat_messages
    from harness.retrieval.select import Shot, choose_shots

    chosen = choose_shots(task, items, ic, progress=progress, refuse=refuse)[0]
    if style == "chat":
        return [Request(item, "chat", shots=chosen[item.id],
                        messages=tuple(chat_messages(task.chat_template, item, chosen[item.id], ic.format)))
                for item in items]
    pool = list(dict.fromkeys([*items, *(shot.item for item in items for shot in chosen[item.id])]))
    cut = dict(zip(pool, truncate_items(task, pool) if reads_prompt else pool))
    return [Request(item, "base", prompt=base_prompt(render_base, task.base_template, cut[item],
                                                     [Shot(cut[s.item], s.score) for s in chosen[item.id]]),
                    shots=chosen[item.id]) for item in items]
