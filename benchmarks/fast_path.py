"""hf: generation speed on this machine's hardware: the exact fp32 path, `dtype=fast`, forced bf16 and
lm-eval, zero-shot and with nearest-k in-context examples, side by side in one run.

Each way is its own `pricebench run` (or `lm_eval`) process on SmolLM2-135M-Instruct, amazon8
(items 0-249 by default), the course's base prompt, greedy, 6 new tokens, timed end to end
(imports, load, generation, scoring). Prints, per way: wall seconds, items/s end to end and in
generation alone, CPU seconds, MAE, the parsed prices it shares with the fp32 run, and a paired
bootstrap of its MAE against the fp32 run's (is the fast path's MAE within the noise?). The first
line says what `dtype=fast` resolves to here (bf16 only on a CPU with AMX / avx512_bf16).

    flock /tmp/pricebench-bench.lock python benchmarks/fast_path.py [--slice 0:250] [--shots 5]
        [--ways lmeval fp32-aten fp32 fast bf16 fp32-nearest fast-nearest bf16-nearest] [--batch-size 16]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hf_vs_lmeval import CPU_SECONDS, mae, timed  # noqa: E402

from harness.exports.lm_eval import export_lm_eval, task_name  # noqa: E402
from harness.predictors.hf.hardware import cpu_flags, fast_dtype_name  # noqa: E402
from harness.scoring import paired_bootstrap, parse_price  # noqa: E402
from harness.tasks import load_task  # noqa: E402
from harness.predictors.hf.testmodels import model_folder  # noqa: E402

# way -> (pricebench options, in-context examples?)
WAYS = {
    "fp32-aten": ({"dtype": "float32", "linear_kernel": "aten"}, False),
    "fp32": ({"dtype": "float32"}, False),
    "fast": ({"dtype": "fast"}, False),
    "bf16": ({"dtype": "bfloat16"}, False),
    "fp32-nearest": ({"dtype": "float32"}, True),
    "fast-nearest": ({"dtype": "fast"}, True),
    "bf16-nearest": ({"dtype": "bfloat16"}, True),
}


def pricebench_way(args, env, work: Path, way: str) -> tuple[dict, float, float, float]:
    """(prices by id, wall s, generation s, CPU s) of one `pricebench run`."""
    options, nearest = WAYS[way]
    store = work / f"runs-{way}"
    cmd = [str(Path(sys.executable).parent / "pricebench"), "--data-dir", args.data_dir, "--store", str(store), "run",
           "--task", "amazon8", "--slice", args.slice, "--model", "hf:smollm2-135m-instruct", "--prompt", "base",
           "-o", f"batch_size={args.batch_size}", "--json"]
    for key, value in options.items():
        cmd += ["-o", f"{key}={value}"]
    if nearest:
        cmd += ["--shots", str(args.shots), "--shot-selector", "nearest", "--retriever", "tfidf"]
    wall = timed(cmd, env)
    run_dir = next(p for p in store.iterdir() if (p / "manifest.json").exists())
    info = json.loads((run_dir / "manifest.json").read_text())["info"]
    prices = {r["id"]: r["price"] for r in map(json.loads, open(run_dir / "predictions.jsonl"))}
    print(f"{way}: dtype {info.get('dtype')}, kernel {info.get('linear_kernel')}, "
          f"generation {info.get('generate_s')} s, prefix {info.get('prefix_cache', '-')}", flush=True)
    return prices, wall, info["generate_s"], CPU_SECONDS[cmd[0]]


def lmeval_way(args, env, work: Path, task) -> tuple[dict, float, None, float]:
    export_lm_eval(task, work / "task")
    out, lm_eval = work / "lmeval", str(Path(sys.executable).parent / "lm_eval")
    folder = model_folder("smollm2-135m-instruct")
    wall = timed([lm_eval, "--model", "hf", "--model_args", f"pretrained={folder},dtype=float32", "--device", "cpu",
                  "--include_path", str(work / "task"), "--tasks", task_name(task), "--batch_size",
                  str(args.batch_size), "--log_samples", "--output_path", str(out)], env)
    samples = [json.loads(line) for f in glob.glob(str(out / "**" / "samples_*.jsonl"), recursive=True)
               for line in open(f)]
    return {s["doc"]["id"]: parse_price(s["resps"][0][0]) for s in samples}, wall, None, CPU_SECONDS[lm_eval]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slice", default="0:250")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--ways", nargs="+", default=["lmeval", "fp32-aten", "fp32", "fast", "bf16", "fp32-nearest",
                                                       "fast-nearest"], choices=["lmeval", *WAYS])
    parser.add_argument("--data-dir", default=os.environ.get("PRICEBENCH_DATA", str(Path(__file__).resolve().parent
                                                                                       .parent.parent / "shared/data")))
    args = parser.parse_args()
    task = load_task("amazon8", data_dir=args.data_dir, eval_slice=args.slice)
    truth = {item.id: item.price for item in task.eval_items()}
    env = {**os.environ, "PRICEBENCH_DATA": args.data_dir, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    work = Path(tempfile.mkdtemp(prefix="fast-path-"))
    native = sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx"))
    print(f"{len(truth)} items, batch {args.batch_size}, {os.cpu_count()} CPUs; native bf16 flags: "
          f"{', '.join(native) or 'none'}; dtype=fast resolves to {fast_dtype_name('cpu')} here", flush=True)
    rows = {}
    for way in args.ways:
        rows[way] = lmeval_way(args, env, work, task) if way == "lmeval" else pricebench_way(args, env, work, way)

    n = len(truth)
    errors = {way: [abs((r[0].get(i) or 0.0) - truth[i]) for i in truth] for way, r in rows.items()}
    print(f"\n{'way':<14}{'wall s':>8}{'items/s':>9}{'CPU s':>8}{'gen s':>8}{'gen it/s':>9}{'MAE':>9}"
          f"{'same $ as fp32':>16}  MAE - fp32's MAE [95% CI], p")
    for way, (prices, wall, gen, cpu) in rows.items():
        ref = "fp32-nearest" if way.endswith("nearest") else "fp32"
        same, test = "-", ""
        if ref in rows and way != ref:
            same = f"{sum(prices.get(i) == rows[ref][0].get(i) for i in truth)}/{n}"
            t = paired_bootstrap(errors[way], errors[ref])
            test = f"{t['mean_diff']:+.2f} [{t['ci_low']:+.2f}, {t['ci_high']:+.2f}], p {t['p_value']:.4f}"
        gen_txt = f"{gen:>8.1f}{n / gen:>9.2f}" if gen else f"{'-':>8}{'-':>9}"
        print(f"{way:<14}{wall:>8.1f}{n / wall:>9.2f}{cpu:>8.1f}{gen_txt}{mae(prices, truth):>9.2f}{same:>16}  {test}")
    for fast, slow in (("fp32", "lmeval"), ("fast", "lmeval"), ("fast", "fp32-aten"), ("fast-nearest", "fp32-nearest")):
        if fast in rows and slow in rows:
            print(f"{fast} vs {slow}: {rows[slow][1] / rows[fast][1]:.2f}x end to end"
                  + (f", {rows[slow][2] / rows[fast][2]:.2f}x in generation" if rows[slow][2] else ""))
    print(f"work folder: {work}")


if __name__ == "__main__":
    main()
