"""How long does the HTML report take for 50 runs x 2,000 items? (target: under 3 s)

The runs are synthesised from the real amazon8 items (all 2,000) by a seeded noise model and
written through the real store (harness.run with a synthetic predictor), so the report reads
exactly what it reads for real runs. Building the store is not timed; the report build is
(collect from the store + ranking with paired bootstraps + grouped metrics by category and price band
with their CIs and per-group paired tests + rendering every page, groups.html included).

    python benchmarks/report_build.py [--runs 50] [--items 2000] [--repeat 3] [--work DIR]
Wrap timed runs in `flock /tmp/pricebench-bench.lock ...` on a shared machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from harness.predictors import register_backend
from harness.predictors.base import Predictor, Reply

REPO = Path(__file__).resolve().parent.parent


class SyntheticPredictor(Predictor):
    """Guess = truth x lognormal noise (per-run bias and spread); ~2% replies without a number."""

    default_prompt = "base"
    batch_size = 1000
    kind = "model"

    def predict_batch(self, requests):
        k = int(self.spec.target.rsplit("-", 1)[1]) * 3 + ("none", "8bit", "4bit").index(self.spec.quant)
        rng = np.random.default_rng(zlib.crc32(f"run-{k}".encode()))
        bias, spread = rng.normal(0, 0.15), 0.3 + 0.02 * k
        replies = []
        for r in requests:
            if rng.random() < 0.02:
                replies.append(Reply(raw="I cannot tell the price of this item."))
                continue
            guess = r.item.price * float(rng.lognormal(bias, spread))
            replies.append(Reply(raw=f"{guess:.2f}", usage={"cost_usd": 2e-5}))
        return replies


def build_store(store: Path, runs: int, items: int, data_dir) -> None:
    from harness.runs.runner import run

    register_backend("synthetic", SyntheticPredictor)
    t0 = time.perf_counter()
    for k in range(runs):
        quant = ("none", "8bit", "4bit")[k % 3]     # 17 models x 3 quant levels: comparisons too
        run("amazon8", f"synthetic:model-{k // 3}", quant=quant, eval_slice=f"0:{items}", data_dir=data_dir,
            store=store, progress=False)
    print(f"store: {runs} runs x {items} items ready in {time.perf_counter() - t0:.1f} s ({store})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-dir", help="offline data (default $PRICEBENCH_DATA, else ../shared/data)")
    parser.add_argument("--work", help="folder for the synthetic store and the report (default: a temp dir)")
    args = parser.parse_args()

    from harness.report import report_for_store

    data_dir = args.data_dir or os.environ.get("PRICEBENCH_DATA") or REPO.parent / "shared" / "data"
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="pricebench-bench-"))
    store, out = work / "runs", work / "report"
    build_store(store, args.runs, args.items, data_dir)
    times, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        index = report_for_store(store=store, out_dir=out, name="bench")
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    pages = len(list(out.rglob("*.html")))
    print(f"report build, {args.runs} runs x {args.items} items: best {min(times):.2f} s, "
          f"median {statistics.median(times):.2f} s over {args.repeat} builds; CPU time best {min(cpu):.2f} s "
          f"({pages} pages, {size / 2**20:.1f} MiB) -> {index}")
    print(f"target < 3 s: {'met' if min(times) < 3 else 'NOT met'} (wall clock; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
