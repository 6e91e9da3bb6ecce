"""5-shot prompts, pricebench vs lm-eval: same model, same rendered prompts, end to end.

SmolLM2-135M-Instruct fp32, greedy, the course's base prompt with 5 fixed random shots from the
train split (seed 42), batch size 8, amazon8 items 0-63 (or --slice). Ways, each its own process,
timed end to end (imports, model load, shot selection, generation, scoring):
  lm_eval      the task exported by `pricebench export-lm-eval --shots 5` (each row's prompt holds its
               shots: what `lm_eval --num_fewshot 5` builds with those shots), hf backend
  pricebench   `pricebench run --shots 5`: the ~1,000-token prefix every prompt shares is computed
               once and reused by every batch (hf: prefix_cache=auto)
  no reuse     the same with -o prefix_cache=off (what the reuse alone buys)
  nearest-5    `pricebench run --shots 5 --shot-selector nearest` (TF-IDF; the index cached by a
               first run): no shared prefix, every prompt in full
Prints wall and CPU seconds, items/s, MAE, and whether the ways' parsed prices agree item for item.
Target: pricebench at least 2x faster than lm_eval end to end, on identical replies.

    flock /tmp/pricebench-timing.lock python benchmarks/in_context.py [--slice 0:64]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.hf_vs_lmeval import CPU_SECONDS, mae, timed  # noqa: E402
from harness.exports.lm_eval import export_lm_eval, task_name  # noqa: E402
from harness.predictors.hf.testmodels import model_folder  # noqa: E402
from harness.scoring import parse_price  # noqa: E402
from harness.tasks import load_task  # noqa: E402

SHOTS = {"shots": 5, "shot_selector": "random"}
LMEVAL, REUSE, NO_REUSE = "lm_eval, 5 random shots (exported)", "pricebench, 5 random shots", "no reuse"


def pricebench(bin_dir: Path, args, store: Path, env, *extra: str) -> tuple[float, float, dict, dict]:
    cmd = [str(bin_dir / "pricebench"), "--data-dir", args.data_dir, "--store", str(store), "run", "--task", "amazon8",
           "--slice", args.slice, "--model", "hf:smollm2-135m-instruct", "--prompt", "base", "--shots", "5",
           "-o", f"batch_size={args.batch_size}", "-o", "dtype=float32", "--json", *extra]
    wall = timed(cmd, env)
    cpu = CPU_SECONDS[cmd[0]]
    run_dir = next(store.iterdir())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    prices = {r["id"]: r["price"] for r in map(json.loads, open(run_dir / "predictions.jsonl"))}
    return wall, cpu, prices, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slice", default="0:64")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--data-dir", default=os.environ.get("PRICEBENCH_DATA", str(REPO.parent / "shared" / "data")))
    parser.add_argument("--skip", nargs="*", default=[], choices=["lmeval", "pricebench", "noreuse", "nearest"])
    args = parser.parse_args()

    task = load_task("amazon8", data_dir=args.data_dir, eval_slice=args.slice).with_in_context(SHOTS)
    truth = {item.id: item.price for item in task.eval_items()}
    work = Path(tempfile.mkdtemp(prefix="in-context-bench-"))
    export_lm_eval(task, work / "task")
    env = {**os.environ, "PRICEBENCH_DATA": args.data_dir, "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    bin_dir = Path(sys.executable).parent
    n = len(truth)
    print(f"{n} items, batch size {args.batch_size}, SmolLM2-135M-Instruct fp32 greedy, base prompt, 5 shots; "
          f"{os.cpu_count()} CPUs", flush=True)
    rows, prices = [], {}
    if "nearest" not in args.skip:       # the TF-IDF index is built once, before anything is timed
        from harness.prompts import build_requests

        build_requests(task.with_in_context({"shot_selector": "nearest"}), task.eval_items()[:1], "base")

    if "lmeval" not in args.skip:
        folder = model_folder("smollm2-135m-instruct")
        lm_eval = str(bin_dir / "lm_eval")
        wall = timed([lm_eval, "--model", "hf", "--model_args", f"pretrained={folder},dtype=float32", "--device", "cpu",
                      "--include_path", str(work / "task"), "--tasks", task_name(task), "--batch_size",
                      str(args.batch_size), "--log_samples", "--output_path", str(work / "lmeval")], env)
        cpu = CPU_SECONDS[lm_eval]
        samples = [json.loads(line) for f in glob.glob(str(work / "lmeval" / "**" / "samples_*.jsonl"), recursive=True)
                   for line in open(f)]
        prices["lm_eval"] = {s["doc"]["id"]: parse_price(s["resps"][0][0]) for s in samples}
        rows.append((LMEVAL, wall, cpu, None))
        print(f"lm_eval: {wall:.1f} s", flush=True)

    for key, name, extra in (("pricebench", REUSE, ()),
                             ("noreuse", f"pricebench, {NO_REUSE} (prefix_cache=off)", ("-o", "prefix_cache=off")),
                             ("nearest", "pricebench, 5 nearest shots (tfidf)", ("--shot-selector", "nearest"))):
        if key in args.skip:
            continue
        wall, cpu, got, manifest = pricebench(bin_dir, args, work / f"runs-{key}", env, *extra)
        prices[key] = got
        info = manifest["info"]
        rows.append((name, wall, cpu, info.get("generate_s")))
        print(f"{name}: {wall:.1f} s; prefix cache: {info.get('prefix_cache', '-')}; "
              f"batch invariance: {info.get('batch_invariance')}", flush=True)

    print(f"\n{'way':<48}{'wall s':>9}{'items/s':>9}{'CPU s':>9}{'generate s':>12}{'MAE':>10}")
    for (name, wall, cpu, gen), got in zip(rows, prices.values()):
        gen_txt = f"{gen:.1f}" if gen else "-"
        print(f"{name:<48}{wall:>9.1f}{n / wall:>9.2f}{cpu:>9.1f}{gen_txt:>12}{mae(got, truth):>10.2f}")
    for a, b in (("lm_eval", "pricebench"), ("pricebench", "noreuse")):     # same prompts: same replies?
        if a in prices and b in prices:
            same = sum(prices[a].get(i) == prices[b].get(i) for i in truth)
            print(f"parsed prices identical, {a} vs {b}: {same}/{n}")
    timing = {name: (wall, cpu) for name, wall, cpu, _ in rows}
    if LMEVAL in timing and REUSE in timing:
        (lw, lc), (pw, pc) = timing[LMEVAL], timing[REUSE]
        print(f"pricebench vs lm_eval end to end, 5 random shots: {lw / pw:.2f}x wall, {lc / pc:.2f}x CPU seconds "
              f"(target >= 2x; on a shared machine CPU seconds are the steadier measure)")
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
