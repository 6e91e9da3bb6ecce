"""fp32 generation speed by batch size at three prompt lengths: what `max_batch_tokens` is set from.

SmolLM2-135M-Instruct, fp32 on the CPU (batch-invariant: every batch size gives the same replies),
amazon8's first N items with K nearest TF-IDF shots (0: zero-shot), sorted by length as hf: sorts
them; prints generation items/s per batch size (the model is loaded once, generation alone timed).

    flock /tmp/pricebench-bench.lock python benchmarks/batch_by_length.py --shots 5 --items 48 --sizes 16,8,4,1
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.predictors import ModelSpec, make_predictor  # noqa: E402
from harness.prompts import build_requests  # noqa: E402
from harness.tasks import load_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shots", type=int, default=0)
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--sizes", default="16,8,4,1")
    parser.add_argument("--data-dir", default=os.environ.get("PRICEBENCH_DATA"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    task = load_task("amazon8", data_dir=args.data_dir, eval_slice=f"0:{args.items}")
    if args.shots:
        task = task.with_in_context({"shots": args.shots, "shot_selector": "nearest", "retriever": "tfidf"})
    predictor = make_predictor(ModelSpec("hf:smollm2-135m-instruct", prompt="base", options={"dtype": "float32"}))
    predictor.prepare(task)
    texts = sorted((predictor.render(r) for r in build_requests(task, task.eval_items(), "base")), key=len)
    tokens = [len(predictor.tokenizer(t)["input_ids"]) for t in texts]
    print(f"{len(texts)} prompts, {args.shots} shots, {min(tokens)}-{max(tokens)} tokens", flush=True)
    for size in (int(s) for s in args.sizes.split(",")):
        t0 = time.perf_counter()
        for start in range(0, len(texts), size):
            predictor._generate(texts[start:start + size], "base", count=False)
        elapsed = time.perf_counter() - t0
        print(f"batch {size:>3}: {elapsed:7.1f} s  {len(texts) / elapsed:5.2f} items/s", flush=True)


if __name__ == "__main__":
    main()
