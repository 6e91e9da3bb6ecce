"""Train a causal-LM fine-tune with TRL's SFTTrainer and peft: LoRA, QLoRA or full.

The dataset is TRL's prompt/completion form (loss on the completion only); the trainer is
`CompletionLossTrainer` (the output layer only where the loss is taken). Checkpoints go to
`<out>/checkpoints/checkpoint-N` every `save_every` steps with optimizer, scheduler and RNG
state, so a killed training started again resumes from the last complete one (its
`trainer_state.json`, written last, is readable); the final adapter (or, for a full fine-tune,
the model) is written to the folder the caller names. Returns the training summary.
"""
from __future__ import annotations

import contextlib
import logging
import time
import warnings
from pathlib import Path

from harness.errors import InputError
from harness.finetune.layout import CHECKPOINTS, last_checkpoint


def resolve_device(name: str) -> str:
    import torch

    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def cpu_threads(setting) -> int:
    """The recipe's `threads`; auto: torch's default, unless the 1-minute load average already fills
    every core: then 1. OpenMP's spinning barriers make 2 threads on a busy 2-core box 5-10x slower
    than 1 (measured: 22-34 vs 160 tokens/s), while an idle box gains from every core."""
    import os

    import torch

    if setting != "auto":
        return int(setting)
    cores = os.cpu_count() or 1
    return 1 if os.getloadavg()[0] >= cores else torch.get_num_threads()


def load_base(recipe, source: str, device: str):
    """The base model as the recipe trains it: fp32 master weights (bf16 runs under autocast), or
    bitsandbytes 4-bit for QLoRA, loaded as the evaluator loads it (nf4, double quantization)."""
    import torch
    from transformers import AutoModelForCausalLM

    from harness.predictors.hf.loading import quantization_config

    opts = recipe.base_options
    kwargs = {"revision": opts.get("revision"), "trust_remote_code": bool(opts.get("trust_remote_code", False)),
              "dtype": torch.float32}
    if recipe.method == "qlora":        # the evaluator's --quant 4bit: nf4, double quantization
        logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
        kwargs["quantization_config"] = quantization_config("4bit", getattr(torch, recipe.qlora["compute_dtype"]))
        kwargs["device_map"] = {"": 0 if device == "cuda" else device}
    model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    if recipe.method != "qlora":
        model.to(device)
    return model


def lora_config(recipe):
    from peft import LoraConfig

    lora = recipe.lora
    return LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                      target_modules=lora["target_modules"], bias="none", task_type="CAUSAL_LM")


def sft_config(recipe, out_dir: Path, device: str, has_validation: bool):
    from trl import SFTConfig

    every_eval = recipe.eval_every
    return SFTConfig(
        output_dir=str(out_dir / CHECKPOINTS), per_device_train_batch_size=recipe.batch_size,
        per_device_eval_batch_size=recipe.batch_size, gradient_accumulation_steps=recipe.grad_accum,
        learning_rate=recipe.learning_rate, lr_scheduler_type=recipe.schedule, warmup_steps=recipe.warmup_ratio,
        num_train_epochs=recipe.epochs or 1.0, max_steps=recipe.max_steps or -1, max_length=recipe.max_length,
        weight_decay=recipe.weight_decay, max_grad_norm=recipe.max_grad_norm, optim=recipe.optimizer,
        seed=recipe.seed, data_seed=recipe.seed, bf16=recipe.resolved_precision == "bf16", fp16=False,
        use_cpu=device == "cpu", activation_checkpointing=False, train_sampling_strategy="group_by_length",
        completion_only_loss=True, logging_steps=1, report_to="none", disable_tqdm=True,
        save_strategy="steps" if recipe.save_every else "no", save_steps=recipe.save_every or 500,
        save_total_limit=None, eval_strategy="steps" if (every_eval and has_validation) else "no",
        eval_steps=every_eval, prediction_loss_only=True, include_num_input_tokens_seen="non_padding",
        dataloader_num_workers=0, remove_unused_columns=True)


def fitting(pairs, tokenizer, max_length: int) -> tuple[list, int]:
    """(the pairs whose prompt + completion + EOS fit in max_length tokens, how many did not): TRL
    would keep a long example's start and cut its completion, teaching the model a cut price."""
    eos = tokenizer.eos_token or ""
    kept = [p for p in pairs if len(tokenizer(p.prompt + p.completion + eos)["input_ids"]) <= max_length]
    return kept, len(pairs) - len(kept)


def _dataset(pairs):
    from datasets import Dataset

    return Dataset.from_list([{"prompt": p.prompt, "completion": p.completion} for p in pairs])


def _quiet():
    """The libraries' own progress bars and advice lines, while ours runs."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*(MatMul8bitLt|inputs will be cast|gemm_4bit).*")
    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6.*", category=FutureWarning)


def make_trainer(recipe, *, source: str, data, out_dir: Path, device: str, progress, callbacks):
    """TRL's SFTTrainer (CompletionLossTrainer) with peft, our progress bar and validation MAE."""
    import torch
    from transformers import AutoTokenizer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from harness.finetune.callbacks import ProgressBar, ValidationMAE
    from harness.finetune.completion_loss import CompletionLossTrainer
    from harness.finetune.fast_dropout import use_fast_dropout

    opts = recipe.base_options
    tokenizer = AutoTokenizer.from_pretrained(source, revision=opts.get("revision"),
                                              trust_remote_code=bool(opts.get("trust_remote_code", False)))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    autocast = (lambda: torch.autocast(device.split(":")[0], dtype=torch.bfloat16)) \
        if recipe.resolved_precision == "bf16" else contextlib.nullcontext
    train, too_long = fitting(data.train, tokenizer, recipe.max_length)
    validation, too_long_validation = fitting(data.validation, tokenizer, recipe.max_length)
    if not train:
        raise InputError(f"no training example fits in max_length {recipe.max_length} tokens", path=recipe.path,
                         field="training.max_length")
    trainer = CompletionLossTrainer(
        model=load_base(recipe, source, device), args=sft_config(recipe, out_dir, device, bool(validation)),
        train_dataset=_dataset(train), eval_dataset=_dataset(validation) if validation else None,
        processing_class=tokenizer, peft_config=lora_config(recipe) if recipe.method != "full" else None,
        callbacks=[ValidationMAE(validation[:recipe.validation_mae_items], tokenizer, autocast),
                   ProgressBar(f"finetune {recipe.name}", progress), *callbacks])
    trainer.too_long = {"train": too_long, "validation": too_long_validation}
    for printer in (PrinterCallback, ProgressCallback):     # ours shows the progress
        trainer.remove_callback(printer)
    use_fast_dropout(trainer.model)
    return trainer


def train_causal_lm(recipe, *, source: str, data, out_dir: Path, final_dir: Path, resume: bool = True,
                    progress: bool | None = None, callbacks=()) -> dict:
    """Train (or resume) `recipe` on `data`, checkpoints under `out_dir`, the result into `final_dir`;
    the summary for the manifest (tokens/s counts training alone, not the evaluations)."""
    import torch

    _quiet()
    device = resolve_device(recipe.device)
    threads_before = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(cpu_threads(recipe.threads))
    try:
        return _train(recipe, source=source, data=data, out_dir=out_dir, final_dir=final_dir, device=device,
                      resume=resume, progress=progress, callbacks=callbacks)
    finally:
        torch.set_num_threads(threads_before)


def _train(recipe, *, source, data, out_dir: Path, final_dir: Path, device: str, resume, progress, callbacks) -> dict:
    import os

    import torch

    trainer = make_trainer(recipe, source=source, data=data, out_dir=out_dir, device=device, progress=progress,
                           callbacks=callbacks)
    start = last_checkpoint(out_dir) if resume else None
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0, tokens0 = time.perf_counter(), _tokens_in(start)
    trainer.train(resume_from_checkpoint=str(start) if start else None)
    wall_s, eval_s = time.perf_counter() - t0, trainer.eval_seconds
    state = trainer.state
    evaluated = any(e.get("step") == state.global_step and "eval_loss" in e for e in state.log_history)
    if trainer.eval_dataset is not None and not evaluated:   # the curve ends with the final weights' figures
        trainer.evaluate()
    trainer.save_model(str(final_dir))
    tokens, train_s = state.num_input_tokens_seen - tokens0, wall_s - eval_s
    return {"steps": state.global_step, "max_steps": state.max_steps, "epochs": state.epoch,
            "resumed_from": start.name if start else None, "train_s": round(train_s, 3),
            "eval_s": round(eval_s, 3), "wall_s": round(wall_s, 3), "tokens": int(tokens),
            "tokens_total": int(state.num_input_tokens_seen), "tokens_per_s": round(tokens / max(train_s, 1e-9), 1),
            "device": device, "threads": torch.get_num_threads(), "load_average": round(os.getloadavg()[0], 2),
            "quantized": _quantized(trainer.model), "too_long_left_out": trainer.too_long,
            "curve": curve(state.log_history),
            "trainable_parameters": _trainable(trainer.model), "peak_memory_mib": peak_memory_mib(device)}


def _tokens_in(checkpoint: Path | None) -> int:
    if checkpoint is None:
        return 0
    from harness.jsonio import read_json

    try:
        return int(read_json(checkpoint / "trainer_state.json").get("num_input_tokens_seen", 0))
    except (OSError, ValueError):
        return 0


def _quantized(model) -> str:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "4bit" if getattr(base, "is_loaded_in_4bit", False) else "none"


def _trainable(model) -> dict:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "total": total}


def curve(log_history: list[dict]) -> list[dict]:
    """One row per step that logged something: train loss, learning rate, validation loss and MAE."""
    keep = ("loss", "learning_rate", "grad_norm", "eval_loss", "eval_mae", "eval_mae_items", "eval_mae_parsed",
            "num_input_tokens_seen")
    rows: dict[int, dict] = {}
    for entry in log_history:
        if "step" not in entry:
            continue
        row = rows.setdefault(int(entry["step"]), {"step": int(entry["step"])})
        row.update({k: entry[k] for k in keep if k in entry})
    return [rows[s] for s in sorted(rows)]


def peak_memory_mib(device: str) -> dict:
    import resource

    out = {"peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.startswith("cuda"):
        import torch

        out["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out
