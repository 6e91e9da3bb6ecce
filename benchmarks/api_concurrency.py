"""Items/s of the openai: predictor at 1, 4 and 16 concurrent requests against a local
OpenAI-compatible server (`transformers serve` of SmolLM2 on 127.0.0.1, started and stopped here).

    flock /tmp/pricebench-bench.lock .venv/bin/python benchmarks/api_concurrency.py --items 32
    ... --continuous-batching     (the server batches concurrent requests)
"""
from __future__ import annotations

import argparse
import os
import time

from harness.predictors.api.local_server import transformers_serve
from harness.predictors import ModelSpec, make_predictor
from harness.prompts import build_requests
from harness.tasks import load_task
from harness.predictors.hf.testmodels import model_folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--prompt", default="chat", choices=("chat", "base"))
    parser.add_argument("--max-tokens", type=int, default=8)
    parser.add_argument("--continuous-batching", action="store_true")
    parser.add_argument("--data-dir", default=os.environ.get("PRICEBENCH_DATA"))
    args = parser.parse_args()

    folder = str(model_folder("smollm2-135m-instruct"))
    task = load_task("amazon8", data_dir=args.data_dir, eval_slice=f"0:{args.items}")
    requests = build_requests(task, task.eval_items(), args.prompt)
    extra = ["--continuous-batching"] if args.continuous_batching else []
    with transformers_serve(folder, extra) as base_url:
        print(f"openai: predictor -> transformers serve (SmolLM2, CPU{', continuous batching' if args.continuous_batching else ''}), "
              f"{len(requests)} amazon8 items, {args.prompt} prompts, max_tokens {args.max_tokens} (shared machine)")
        print(f"{'concurrency':>11}{'wall s':>9}{'items/s':>9}{'mean latency s':>16}{'failed':>8}")
        for level in [int(x) for x in args.levels.split(",")]:
            predictor = make_predictor(ModelSpec(f"openai:{folder}", prompt=args.prompt, options={
                "base_url": base_url, "concurrency": level, "timeout": 600, "max_retries": 0,
                "max_tokens": args.max_tokens}))
            predictor.prepare(task)
            t0 = time.perf_counter()
            replies = [reply for _, reply in predictor.predict(requests)]
            wall = time.perf_counter() - t0
            predictor.close()
            latency = sum(r.latency_s for r in replies) / len(replies)
            failed = sum(r.error is not None for r in replies)
            print(f"{level:>11}{wall:>9.1f}{len(replies) / wall:>9.2f}{latency:>16.2f}{failed:>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
