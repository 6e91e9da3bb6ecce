"""Export a pricebench task as an lm-evaluation-harness task folder.

`pricebench export-lm-eval amazon8 DIR` writes
  DIR/<name>.jsonl  the task's evaluation items with the prompt already rendered (no hub access)
  DIR/<name>.yaml   a generate_until task over that file, greedy, same new-token budget
  DIR/utils.py      process_results + aggregations that call harness.scoring (the course's rules)
so that `lm_eval --model hf --include_path DIR --tasks <name>` scores exactly as pricebench does,
and a run through lm-eval can be compared with `pricebench run` item for item.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from harness.predictors.hf import DEFAULT_MAX_NEW_TOKENS
from harness.prompts import build_requests

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


def task_name(task) -> str:
    return f"pricebench_{task.name}".replace("-", "_")


def export_lm_eval(task, out_dir, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> Path:
    """Write the lm-eval task folder for `task` (base-completion prompt); return the YAML path."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    name = task_name(task)
    requests = build_requests(task, task.eval_items(), "base")
    data = out / f"{name}.jsonl"
    tmp = data.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in requests:
            f.write(json.dumps({"id": r.item.id, "prompt": r.prompt, "price": r.item.price}, ensure_ascii=False) + "\n")
    tmp.replace(data)
    (out / "utils.py").write_text(UTILS, encoding="utf-8")
    spec = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "{{prompt}}",
        "doc_to_target": "{{price}}",
        "generation_kwargs": {"until": "UNTIL", "max_gen_toks": max_new_tokens, "do_sample": False},
        "process_results": "UTILS.process_results",
        "metric_list": [{"metric": "mae", "aggregation": "mean", "higher_is_better": False},
                        {"metric": "rmsle", "aggregation": "UTILS.rmsle", "higher_is_better": False},
                        {"metric": "hit_rate", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "parse_failure_rate", "aggregation": "mean", "higher_is_better": False}],
        "metadata": {"version": 1.0, "pricebench_task": task.name, "eval_slice": task.eval_slice,
                     "eval_hash": task.eval_hash},
    }
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    text = text.replace("UTILS.", "!function utils.").replace("until: UNTIL", 'until: ["\\n"]')
    path = out / f"{name}.yaml"
    path.write_text(f"# Written by `pricebench export-lm-eval {task.name}`: {len(requests)} items of slice "
                    f"{task.eval_slice}.\n{text}", encoding="utf-8")
    return path
