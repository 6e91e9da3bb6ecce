"""How an item becomes a prompt: the course's base-model completion, or chat messages.

Base models continue `...Price is $`; chat models get a system + user message that asks
for a number, with the assistant's turn started as `Price is $` (the course's frontier
prompt). Both renderings are hashed into the run identity and per item.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from harness.data import Item

STYLES = ("base", "chat")


def render_base(template: str, item: Item) -> str:
    return template.replace("{text}", item.text)


def render_chat(template: dict, item: Item) -> list[dict]:
    messages = [{"role": "system", "content": template["system"]},
                {"role": "user", "content": template["user"].replace("{text}", item.text)}]
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

    @property
    def prompt_hash(self) -> str:
        payload = self.prompt if self.style == "base" else json.dumps(self.messages, ensure_ascii=False)
        return hashlib.sha256((payload or "").encode()).hexdigest()[:12]


def build_requests(task, items, style: str) -> list[Request]:
    if style not in STYLES:
        raise ValueError(f"prompt style must be one of {STYLES}, got {style!r}")
    if style == "base":
        return [Request(item, "base", prompt=render_base(task.base_template, item)) for item in items]
    return [Request(item, "chat", messages=tuple(render_chat(task.chat_template, item))) for item in items]
