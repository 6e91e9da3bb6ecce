"""A small real task for the in-context tests: 40 real amazon8 items (the first 20 evaluated) and a
train split of 200 other real items plus two planted copies: evaluation item 5 under a new id (its
title re-cased and re-punctuated, another price) and item 30 (asked only by some tests) likewise."""
from __future__ import annotations

import json
from pathlib import Path

from harness.data import read_items

TASK = """name: planted
eval_slice: "0:20"
source:
  local:
    test: eval.jsonl
    train:
      - {file: train.jsonl}
prompts:
  base: "How much does this cost to the nearest dollar?\\n\\n{text}\\n\\nPrice is $"
  chat:
    system: "You estimate prices of items. Reply only with the price, no explanation"
    user: "How much does this cost?\\n\\n{text}"
    assistant_prefix: "Price is $"
"""


def _copy(item, new_id: str) -> dict:
    twin = item.to_dict()
    twin.update(id=new_id, price=round(twin["price"] * 3 + 1, 2), title=twin["title"].upper() + "!!")
    return twin


def planted_task(folder: Path, data_dir: Path, extra_yaml: str = "") -> tuple[Path, list]:
    """Write the task into `folder`; (its YAML path, the 40 items of eval.jsonl)."""
    items = read_items(Path(data_dir) / "amazon8" / "test.jsonl")
    evaluated = items[:40]
    train = [i.to_dict() for i in items[1000:1200]]
    train.insert(17, _copy(items[5], "planted-copy"))
    train.insert(90, _copy(items[30], "planted-30"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eval.jsonl").write_text("".join(json.dumps(i.to_dict()) + "\n" for i in evaluated))
    (folder / "train.jsonl").write_text("".join(json.dumps(i) + "\n" for i in train))
    path = folder / "planted.yaml"
    path.write_text(TASK + extra_yaml)
    return path, evaluated


def course_rag_message(asked_text: str, shots) -> str:
    """The course's RAG user message, written out here independently of harness/retrieval/render.py."""
    text = "To provide some context, here are some other items that might be similar to the item you need to " \
           "estimate.\n\n"
    for item in shots:
        text += f"Potentially related product:\n{item.text}\nPrice is ${item.price:.2f}\n\n"
    return text + "And now the question for you:\n\nHow much does this cost?\n\n" + asked_text
