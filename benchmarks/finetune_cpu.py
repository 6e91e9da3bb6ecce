"""Training throughput on this CPU: SmolLM2-135M-Instruct, LoRA r 32 on q/k/v/o, amazon8 train pairs.

Each way trains a fresh adapter (same seed, same batches: real prompt/completion pairs of the
amazon8 train split, grouped by length, right padding, AdamW) and prints tokens/s (wall) and
tokens per CPU-second (this process's CPU time: on a shared box, the wall figure is what the
other processes leave us; the CPU figure is close to what an idle core gives), next to the
compute limit: 4 FLOP per parameter per token for LoRA (forward 2 + input gradients 2; the
frozen weights get no gradient), at the bf16 `linear` rate measured here at the model's shapes.

    flock /tmp/pricebench-timing.lock python benchmarks/finetune_cpu.py [--batch 16] [--steps 3]
        [--threads N] [--ways fp32,autocast,...] [--end-to-end 6]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

WAYS = {  # name -> (what it is, autocast bf16?, loss)
    "fp32": ("fp32, stock loss (logits at every position)", False, "stock"),
    "autocast": ("bf16 autocast, stock loss", True, "stock"),
    "trl-fused": ("bf16 autocast, TRL 1.16's fused LM head (every position, in tiles, on CPU)", True, "fused"),
    "completion": ("bf16 autocast + logits at the completion only", True, "completion-mask"),
    "no-mask": ("+ right-padded batch without attention mask", True, "completion"),
    "pricebench": ("+ fast LoRA dropout (what `pricebench finetune` runs)", True, "completion"),
    # what `precision: auto` trains on a CPU without native bf16 (emulated bf16 is slower there)
    "pricebench-fp32": ("the same in fp32 (`precision: auto` without native bf16)", False, "completion"),
}
SHAPES = [(576, 576), (576, 192), (576, 1536), (1536, 576), (576, 32), (32, 576)]   # SmolLM2's linears + LoRA


def batches(batch_size: int, count: int):
    """`count` batches of real amazon8 train pairs, tokenized as TRL does (prompt + completion + EOS,
    labels -100 on the prompt), grouped by length, right-padded."""
    from harness.finetune.data import build_data
    from harness.finetune.recipe import load_recipe
    from harness.predictors.hf.testmodels import model_folder
    from harness.tasks import load_task
    from transformers import AutoTokenizer

    folder = model_folder("smollm2-135m-instruct")
    tok = AutoTokenizer.from_pretrained(folder)
    recipe = load_recipe("smollm2-135m-lora-cpu")
    data = build_data(load_task("amazon8"), recipe)
    rows = []
    for pair in data.train[: batch_size * count]:
        prompt = tok(pair.prompt)["input_ids"]
        full = tok(pair.prompt + pair.completion + tok.eos_token)["input_ids"]
        rows.append((full, [-100] * len(prompt) + full[len(prompt):]))
    rows.sort(key=lambda r: len(r[0]))
    out = []
    for start in range(0, len(rows), batch_size):
        group = rows[start:start + batch_size]
        width = max(len(ids) for ids, _ in group)
        ids = torch.full((len(group), width), tok.pad_token_id)
        labels = torch.full((len(group), width), -100)
        mask = torch.zeros((len(group), width), dtype=torch.long)
        for i, (row_ids, row_labels) in enumerate(group):
            ids[i, :len(row_ids)], labels[i, :len(row_ids)], mask[i, :len(row_ids)] = \
                torch.tensor(row_ids), torch.tensor(row_labels), 1
        out.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return folder, out


def make_model(folder, way: str):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from harness.finetune.fast_dropout import use_fast_dropout

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if WAYS[way][2] == "fused":
        add_fused_lm_head(model)
    model = get_peft_model(model, LoraConfig(r=32, lora_alpha=64, lora_dropout=0.1, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    if way.startswith("pricebench"):
        use_fast_dropout(model)
    model.train()
    return model


def train_step(model, way: str, batch: dict, optimizer) -> float:
    from harness.finetune.completion_loss import completion_loss

    _, autocast, loss_kind = WAYS[way]
    context = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with context:
        if loss_kind == "stock":
            loss = model(**batch).loss
        elif loss_kind == "fused":
            loss = model(**batch, fused_lm_head=True).loss
        else:
            loss, _ = completion_loss(model, batch, drop_mask=loss_kind == "completion")
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return float(loss.detach())


def measure(folder, way: str, data: list[dict], steps: int) -> dict:
    model = make_model(folder, way)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    train_step(model, way, data[0], optimizer)                      # warm-up: kernels, allocator
    tokens, wall, cpu, losses = 0, 0.0, 0.0, []
    for batch in data[1:steps + 1]:
        c0, t0 = time.process_time(), time.perf_counter()
        losses.append(train_step(model, way, batch, optimizer))
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        tokens += int(batch["attention_mask"].sum())
    return {"tokens_s": tokens / wall, "tokens_cpu_s": tokens / cpu, "cores": cpu / wall, "loss": losses[-1]}


def linear_rate(rows: int, dtype, repeats: int = 10) -> float:
    """GFLOP/s of torch's `linear` at SmolLM2's shapes (summed FLOP / summed time)."""
    flop, seconds = 0.0, 0.0
    with torch.inference_mode():
        for n_in, n_out in SHAPES:
            x, w = torch.randn(rows, n_in, dtype=dtype), torch.randn(n_out, n_in, dtype=dtype)
            torch.nn.functional.linear(x, w)
            t0 = time.perf_counter()
            for _ in range(repeats):
                torch.nn.functional.linear(x, w)
            seconds += time.perf_counter() - t0
            flop += 2.0 * rows * n_in * n_out * repeats
    return flop / seconds / 1e9


def end_to_end(steps: int, threads: int | None) -> dict:
    """`pricebench finetune` itself (SFTTrainer, callbacks, checkpoint-free) for `steps` steps."""
    import dataclasses
    import tempfile

    from harness.finetune.adapters import finetune
    from harness.finetune.recipe import load_recipe
    from harness.tasks import load_task

    recipe = load_recipe("smollm2-135m-lora-cpu")
    with tempfile.TemporaryDirectory() as tmp:
        recipe = dataclasses.replace(recipe, eval_every=None, save_every=None, validation=0, validation_mae_items=0,
                                     threads=threads or torch.get_num_threads())
        result = finetune(recipe, load_task("amazon8"), adapters=tmp, max_steps=steps, progress=False)
    return result.manifest["training"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per way (after one warm-up step)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated, of {', '.join(WAYS)}")
    parser.add_argument("--end-to-end", type=int, default=0, metavar="STEPS",
                        help="also time `pricebench finetune` for this many steps")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("PRICEBENCH_DATA", str(Path(__file__).resolve().parent.parent.parent / "shared" / "data"))
    folder, data = batches(args.batch, args.steps + 1)
    tokens = sum(int(b["attention_mask"].sum()) for b in data[1:])
    width = sum(b["input_ids"].numel() for b in data[1:])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, load average {os.getloadavg()[0]:.2f}")
    print(f"batch {args.batch}, {args.steps} timed steps, {tokens / (args.batch * args.steps):.0f} tokens per "
          f"sequence, padding {1 - tokens / width:.1%}")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(folder)
    params = sum(p.numel() for p in base.parameters())           # the tied output layer counted once
    embed = base.get_output_embeddings().weight.numel()
    del base
    rows = int(tokens / args.steps)
    bf16, fp32 = linear_rate(rows, torch.bfloat16), linear_rate(rows, torch.float32)
    print(f"linear at the model's shapes, {rows} rows: bf16 {bf16:.0f} GFLOP/s, fp32 {fp32:.0f} GFLOP/s")
    limit = bf16 * 1e9 / (4 * params)
    body_limit = bf16 * 1e9 / (4 * (params - embed))
    print(f"compute limit (4 FLOP/parameter/token at bf16): {limit:.0f} tokens/s with the output layer at every "
          f"token ({params / 1e6:.0f}M parameters), {body_limit:.0f} tokens/s without it "
          f"({(params - embed) / 1e6:.0f}M)")
    print(f"\n{'way':<12}{'tokens/s':>10}{'tokens/CPU-s':>14}{'cores':>7}{'loss':>8}  what")
    for way in [w.strip() for w in args.ways.split(",") if w.strip()]:
        r = measure(folder, way, data, args.steps)
        print(f"{way:<12}{r['tokens_s']:>10.0f}{r['tokens_cpu_s']:>14.0f}{r['cores']:>7.2f}{r['loss']:>8.3f}  "
              f"{WAYS[way][0]}", flush=True)
    if args.end_to_end:
        summary = end_to_end(args.end_to_end, args.threads)
        print(f"\npricebench finetune, {summary['steps']} steps: {summary['tokens_per_s']} tokens/s "
              f"({summary['tokens']:,} tokens in {summary['train_s']} s, peak RSS "
              f"{summary['peak_memory_mib']['peak_rss_mib']} MiB)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
