"""How long do export-runs and import take for 50 runs x 2,000 items, and what does import hold in memory?

The store is the one benchmarks/report_build.py synthesises (real amazon8 items, written through
the real runner; not timed). Timed: `export_runs` of every run to one bundle, `import_bundle` of
it into an empty store, and a second import (every run identical: nothing written). Peak memory
is the process's maximum resident set size after each step (it only grows).

    python benchmarks/bundles.py [--runs 50] [--items 2000] [--work DIR]
Wrap timed runs in `flock /tmp/pricebench-timing.lock ...` on a shared machine.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report_build import REPO, build_store  # noqa: E402  (a sibling script)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from harness.runs.bundles import export_runs, import_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--work", help="folder for the store and bundle (default: a temporary one)")
    args = parser.parse_args()
    data_dir = os.environ.get("PRICEBENCH_DATA", str(REPO.parent / "shared" / "data"))
    work = Path(args.work or tempfile.mkdtemp(prefix="pricebench-bundles-"))
    store = work / f"store-{args.runs}x{args.items}"
    if not store.exists():
        build_store(store, args.runs, args.items, data_dir)
    runs = sorted(p.name for p in store.iterdir())
    on_disk = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    print(f"{len(runs)} runs, {on_disk / 2**20:.1f} MiB on disk; peak RSS before: {_rss_mib():.0f} MiB")
    bundle, target = work / "all.tar.gz", work / f"imported-{time.time_ns()}"
    for step, action in (("export", lambda: export_runs(runs, bundle, store=store)),
                         ("import", lambda: import_bundle(bundle, store=target)),
                         ("import again (nothing written)", lambda: import_bundle(bundle, store=target))):
        t0 = time.perf_counter()
        action()
        print(f"{step}: {time.perf_counter() - t0:.2f} s; peak RSS {_rss_mib():.0f} MiB")
    print(f"bundle: {bundle.stat().st_size / 2**20:.1f} MiB ({on_disk / bundle.stat().st_size:.1f}x smaller "
          f"than the store's files)")


if __name__ == "__main__":
    main()
