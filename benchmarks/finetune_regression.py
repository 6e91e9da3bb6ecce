"""Train one `objective: regression` adapter on a task's train split; print its training summary.

    python benchmarks/finetune_regression.py OUT_DIR [--model smollm2-135m-instruct|gemma-3-270m]
        [--train-from all|in-task] [--train-count N] [--validation N] [--max-length 128] [--lr 3e-4]
        [--r 16] [--alpha 32] [--targets q_proj,k_proj,v_proj,o_proj] [--max-steps N | --epochs E]
        [--batch-size 8] [--grad-accum 1] [--schedule cosine] [--warmup 0.03] [--resume]
    pricebench run --task amazon8 --model hf:smollm2-135m-instruct -o adapter=OUT_DIR   # then evaluate it

The quality experiment of docs/finetuning.md ("Regression head") until recipes route
`objective: regression` here themselves. Training pairs are the task's train split (leakage
guard applied) rendered with the evaluator's base prompt, without the price; the validation
items are a seeded sample of the train split (`--train-from in-task`: the task's own test
items 250+, in distribution), never the evaluation slice. Writes OUT_DIR/summary.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def split(task, train_from: str, count: int | None, validation: int, seed: int):
    """(train pairs, validation pairs) from the task's train split: validation is drawn first,
    from the in-task items (the evaluation distribution), and never trained on."""
    from harness.prompts import build_requests

    items = task.train_items()
    in_task = [item for item in items if item.id.startswith(f"{task.name}-")]
    rng = random.Random(seed)
    held = set(item.id for item in rng.sample(in_task, validation)) if validation else set()
    pool = [item for item in (in_task if train_from == "in-task" else items) if item.id not in held]
    rng.shuffle(pool)
    pool = pool[:count] if count else pool
    eval_ids = {item.id for item in task.eval_items()}
    assert not (held | {item.id for item in pool}) & eval_ids, "train split overlaps the evaluation slice"
    to_pairs = lambda chosen: [(r.prompt, r.item.price) for r in build_requests(task, chosen, "base")]  # noqa: E731
    return to_pairs(pool), to_pairs([item for item in in_task if item.id in held])


def log_lines(every: int, limit_s: float | None):
    """A Trainer callback printing step, loss and validation MAE to stderr (training takes minutes),
    and stopping the training (which then saves the adapter) once it has run limit_s seconds."""
    import time

    from transformers import TrainerCallback

    class LogLines(TrainerCallback):
        start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if limit_s and time.perf_counter() - self.start > limit_s:
                print(f"time limit: stopping at step {state.global_step}", file=sys.stderr, flush=True)
                control.should_training_stop = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "eval_mae" in logs or ("loss" in logs and state.global_step % every == 0):
                shown = {k: round(v, 4) for k, v in logs.items() if k in ("loss", "eval_mae", "learning_rate")}
                print(f"step {state.global_step}/{state.max_steps} {time.perf_counter() - self.start:.0f}s {shown}",
                      file=sys.stderr, flush=True)

    return LogLines()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--task", default="amazon8")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="a test-model alias or a safetensors folder")
    parser.add_argument("--data-dir", default=os.environ.get("PRICEBENCH_DATA"))
    parser.add_argument("--train-from", choices=["all", "in-task"], default="all")
    parser.add_argument("--train-count", type=int)
    parser.add_argument("--validation", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--r", type=int, default=16)
    parser.add_argument("--alpha", type=int, default=32)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    parser.add_argument("--layers", help="LoRA only on layers START:END (e.g. 20:30), default all")
    parser.add_argument("--threads", type=int, help="torch threads (1 ran 3-5x faster per CPU second on the shared box)")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--schedule", default="cosine")
    parser.add_argument("--warmup", type=float, default=0.03)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval-every", type=int)
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--time-limit-min", type=float, default=60.0, help="stop training after this long (default 60)")
    args = parser.parse_args(argv)

    from harness.finetune.regression import train_regression
    from harness.predictors.hf import testmodels
    from harness.tasks import load_task

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    task = load_task(args.task, data_dir=args.data_dir)
    train, validation = split(task, args.train_from, args.train_count, args.validation, args.seed)
    model_dir = testmodels.model_folder(args.model) if args.model in testmodels.ALIASES else Path(args.model)
    print(f"{len(train)} train / {len(validation)} validation pairs; model {model_dir}", file=sys.stderr)
    summary = train_regression(
        model_dir=model_dir, train=train, validation=validation, out_dir=args.out_dir,
        lora={"r": args.r, "alpha": args.alpha, "dropout": args.dropout, "target_modules": args.targets.split(","),
              "layers_to_transform": list(range(*map(int, args.layers.split(":")))) if args.layers else None},
        learning_rate=args.lr, schedule=args.schedule, warmup_ratio=args.warmup, epochs=args.epochs,
        max_steps=args.max_steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
        max_length=args.max_length, seed=args.seed, precision=args.precision, eval_every=args.eval_every,
        save_every=args.save_every, resume=args.resume, callbacks=[log_lines(10, args.time_limit_min * 60)])
    summary["args"] = {k: str(v) for k, v in vars(args).items()}
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    brief = {k: summary[k] for k in ("steps", "examples_seen", "train_s", "tokens_per_s", "final_validation_mae",
                                     "validation_mae", "peak_rss_mib")}
    print(json.dumps(brief))
    return 0


if __name__ == "__main__":
    sys.exit(main())
