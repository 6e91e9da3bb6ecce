"""Fit and evaluate every `baseline:` model on amazon8 and appliances; print one table.

    flock /tmp/pricebench-bench.lock python benchmarks/baselines.py [--tasks amazon8 appliances]
        [--models bow-linreg tfidf-ridge ...] [--reuse-cache]

Per model: MAE with its 95% bootstrap CI, RMSLE, hits, fit seconds (the run's prepare step:
fitting, or loading a cached fit), predict seconds, and the process's peak resident memory
while that model fitted and predicted (sampled every 20 ms). By default fits go to a fresh
temporary cache and runs to a temporary store, so every figure is a cold fit.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class PeakMemory:
    """Peak resident memory of this process between enter and exit."""

    def __enter__(self):
        self.peak, self._stop = rss_mib(), threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_mib())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def main(argv=None) -> int:
    from harness.predictors.baselines.recipes import RANDOM, RECIPES

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["amazon8", "appliances"])
    parser.add_argument("--models", nargs="+", default=[RANDOM, *RECIPES])
    parser.add_argument("--data-dir", default=os.environ.get("PRICEBENCH_DATA"))
    parser.add_argument("--reuse-cache", action="store_true",
                        help="use the normal fitted-model cache (default: a fresh one, so fits are timed cold)")
    parser.add_argument("--no-warm", dest="warm", action="store_false",
                        help="skip the second pass (fresh run store, same fitted cache: loads, no refits)")
    args = parser.parse_args(argv)

    scratch = tempfile.TemporaryDirectory(prefix="pricebench-bench-")
    if not args.reuse_cache:
        os.environ["PRICEBENCH_CACHE"] = scratch.name
    from harness.tasks import load_task

    tasks = {}
    for task_name in args.tasks:
        t0 = time.perf_counter()
        task = load_task(task_name, data_dir=args.data_dir)
        print(f"{task_name}: {len(task.eval_items())} eval items, {len(task.train_items()):,} train items "
              f"(loaded in {time.perf_counter() - t0:.1f} s)")
        tasks[task_name] = task
    for number, name in enumerate(["cold: every model fitted", "warm: fitted models loaded from the cache"]):
        if number and not args.warm:
            break
        print(f"== pass {number + 1}, {name}")
        bench_pass(tasks, args.models, Path(scratch.name) / f"runs-{number}")
    scratch.cleanup()
    return 0


def bench_pass(tasks, models, store):
    import harness

    started = time.perf_counter()
    header = (f"{'task':<11}{'model':<24}{'MAE':>8}  {'95% CI':<18}{'RMSLE':>6}{'hits':>7}"
              f"{'fit s':>8}{'predict s':>10}{'peak MiB':>10}")
    rows = []
    for task_name, task in tasks.items():
        for name in models:
            with PeakMemory() as memory:
                result = harness.run(task, f"baseline:{name}", store=store, progress=False)
            m, timings = result.metrics, result.manifest["timings"]
            rows.append(f"{task_name:<11}{name:<24}{m['mae']:>8.2f}  [{m['mae_ci_low']:>6.2f}, {m['mae_ci_high']:>6.2f}]"
                        f"{m['rmsle']:>8.2f}{m['hit_rate']:>6.1f}%{timings['prepare_s']:>8.1f}{timings['predict_s']:>10.2f}"
                        f"{memory.peak:>10.0f}")
            print(rows[-1], file=sys.stderr, flush=True)
    total = time.perf_counter() - started
    print(header)
    print("\n".join(rows))
    print(f"total wall time (fit or load, and predict, every model on every task): {total:.1f} s "
          f"on {os.cpu_count()} CPUs\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
