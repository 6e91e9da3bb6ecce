"""Export a pricebench task as an lm-evaluation-harness task folder.

`pricebench export-lm-eval amazon8 DIR [--prompt base|chat]` writes
  DIR/<name>.jsonl  the task's evaluation items with the prompt already rendered (no hub access)
  DIR/<name>.yaml   a generate_until task over that file, greedy, same new-token budget
  DIR/utils.py      process_results + aggregations that call harness.scoring (the course's rules)
so that `lm_eval --model hf --include_path DIR --tasks <name>` scores exactly as pricebench does,
and a run through lm-eval can be compared with `pricebench run` item for item. With in-context
examples (--shots ...) each row's prompt holds its own shots, rendered as pricebench renders them
(the same prompts as lm-eval's --num_fewshot with target_delimiter "" and fewshot_delimiter
"\n\n", but per item, so nearest shots work too); the row's `shots` lists their ids.

The chat prompt maps onto lm-eval's own chat fields: the system message is the task
`description`, the user message `doc_to_text`, and the assistant's "Price is $" the
`gen_prefix`, which lm-eval continues (continue_final_message) under `--apply_chat_template`,
as hf: does. Each is a column of the JSONL, named in the YAML.

The folder follows the owned-folder rule (harness.owned): its marker lists the files
exports wrote; each is written atomically, a file pricebench did not write (a user's own utils.py
or task YAML) is never overwritten, and other tasks' exports in the folder stay.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from harness.errors import InputError
from harness import owned
from harness.jsonio import atomic_write
from harness.predictors.hf.predictor import DEFAULT_MAX_NEW_TOKENS
from harness.prompts import build_requests
from harness.scoring import METRIC_BY_KEY
from harness.yamlspec import SAFE_NAME

HEADER = "# Written by `pricebench export-lm-eval"
MARKER, WRITTEN_BY = ".pricebench-lm-eval.json", "pricebench export-lm-eval"

UTILS = '''"""Scoring hooks for lm-eval: pricebench's own parse and course metrics (harness.scoring)."""
import math

from harness.scoring import parse_price, score_item


def process_results(doc, results):
    price = parse_price(results[0])
    guess = price if price is not None else 0.0        # the course: no number = a guess of 0
    score = score_item(guess, float(doc["price"]))
    return {"mae": score["error"], "rmsle": score["sle"], "hit_rate": 100.0 * (score["colour"] == "green"),
            "parse_failure_rate": 100.0 * (price is None)}


def rmsle(sles):
    return math.sqrt(sum(sles) / len(sles))
'''

# The metrics utils.process_results returns per item, and how lm-eval aggregates each over the items.
AGGREGATIONS = {"mae": "mean", "rmsle": "UTILS.rmsle", "hit_rate": "mean", "parse_failure_rate": "mean"}


def metric_list() -> list[dict]:
    """The YAML's metric_list: names and directions from the metric schema (harness.scoring.METRICS)."""
    return [{"metric": key, "aggregation": aggregation, "higher_is_better": not METRIC_BY_KEY[key].lower_is_better}
            for key, aggregation in AGGREGATIONS.items()]


def task_name(task, prompt: str = "base") -> str:
    shots = task.in_context.slug() if getattr(task, "in_context", None) is not None else ""
    name = f"pricebench_{task.name}{'_chat' if prompt == 'chat' else ''}{'_' + shots if shots else ''}"
    return name.replace("-", "_")


def _doc(request) -> dict:
    """One JSONL row: the rendered prompt (base) or its chat parts (chat), with the truth."""
    if request.style == "base":
        fields = {"prompt": request.prompt}
    else:
        roles = {m["role"]: m["content"] for m in request.messages}
        fields = {"system": roles["system"], "user": roles["user"], "assistant_prefix": roles.get("assistant")}
    shots = {"shots": [shot.item.id for shot in request.shots]} if request.shots else {}
    return {"id": request.item.id, **fields, "price": request.item.price, **shots}


def _prompt_fields(task, prompt: str) -> dict:
    """Where the YAML finds the prompt: lm-eval reads a value naming a JSONL column as that column."""
    if prompt == "base":
        return {"doc_to_text": "{{prompt}}"}
    fields = {"description": "system", "doc_to_text": "user"}
    if task.chat_template.get("assistant_prefix"):
        fields["gen_prefix"] = "assistant_prefix"
    return fields


def _written_by_us(path: Path, kind: str) -> bool:
    """Is the existing file one an earlier export wrote (so replacing it clobbers nothing)?"""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline(4096)
    except IsADirectoryError:
        return False
    if kind == "yaml":
        return first.startswith(HEADER)
    if kind == "utils":
        return first == UTILS.splitlines(keepends=True)[0]
    try:
        row = json.loads(first)
    except ValueError:
        return False
    return isinstance(row, dict) and {"id", "price"} <= set(row) <= {"id", "price", "prompt", "system", "user",
                                                                       "assistant_prefix", "shots"}


def _legacy_files(folder: Path, marker) -> set[str] | None:
    """A folder from before the marker: ours only if every file in it is one an export wrote."""
    names = {}
    for entry in os.scandir(folder):
        kind = "yaml" if entry.name.endswith(".yaml") else "utils" if entry.name == "utils.py" else \
            "jsonl" if entry.name.endswith(".jsonl") else None
        if kind is None or not entry.is_file(follow_symlinks=False) or not _written_by_us(Path(entry.path), kind):
            return None
        names[entry.name] = kind
    return set(names)


LM_EVAL = owned.Owner(MARKER, WRITTEN_BY, "dir", legacy=_legacy_files)


def export_lm_eval(task, out_dir, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, prompt: str = "base") -> Path:
    """Write the lm-eval task folder for `task` in the base or chat prompt; return the YAML path."""
    if not SAFE_NAME.fullmatch(task.name) or ".." in task.name:
        raise InputError(f"task name {task.name!r} is not a safe file name", path=task.spec.path, field="name")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or not 1 <= max_new_tokens <= 4096:
        raise InputError(f"must be 1 to 4096, got {max_new_tokens!r}", field="--max-new-tokens")
    in_context = getattr(task, "in_context", None)
    if prompt == "chat" and in_context is not None and in_context.format == "turns":
        raise InputError("lm-eval's chat fields hold one system message, one user message and a prefix: export "
                         "the course's RAG message (--shot-format message)", field="--shot-format")
    out = Path(os.path.abspath(out_dir))
    name = task_name(task, prompt)
    data, path, utils = out / f"{name}.jsonl", out / f"{name}.yaml", out / "utils.py"
    requests = build_requests(task, task.eval_items(), prompt)
    planned = {data.name, path.name, utils.name}
    with owned.writing(out, LM_EVAL, keep_others=True, planned=planned) as staging:
        atomic_write(staging / data.name, "".join(json.dumps(_doc(r), ensure_ascii=False) + "\n" for r in requests))
        atomic_write(staging / utils.name, UTILS)
        atomic_write(staging / path.name, _yaml_text(task, name, data, requests, max_new_tokens, prompt))
    return path


def _yaml_text(task, name: str, data: Path, requests, max_new_tokens: int, prompt: str) -> str:
    """The task YAML: a generate_until task over the JSONL at its final path."""
    in_context = getattr(task, "in_context", None)
    spec = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "generate_until",
        **_prompt_fields(task, prompt),
        "doc_to_target": "{{price}}",
        "generation_kwargs": {"until": "UNTIL", "max_gen_toks": max_new_tokens, "do_sample": False},
        "process_results": "UTILS.process_results",
        "metric_list": metric_list(),
        "metadata": {"version": 1.0, "pricebench_task": task.name, "prompt": prompt, "eval_slice": task.eval_slice,
                     "eval_hash": task.eval_hash,
                     **({"in_context": in_context.as_options()} if in_context and in_context.active else {})},
    }
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    text = text.replace("UTILS.", "!function utils.").replace("until: UNTIL", 'until: ["\\n"]')
    usage = "\n# The chat prompt needs `lm_eval --apply_chat_template`." if prompt == "chat" else ""
    return f"{HEADER} {task.name} --prompt {prompt}`: {len(requests)} items of slice {task.eval_slice}.{usage}\n{text}"
