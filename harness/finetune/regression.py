"""`objective: regression`: the backbone with a scalar head on log(price), trained with LoRA.

A language model asked for a price must spell it out token by token, and a 135M model does
that badly (hf: zero-shot is worse than a constant). Here the same backbone reads the same
prompt and a one-output linear head on its last token's hidden state predicts the
standardised log price: transformers' sequence-classification model with
`problem_type="regression"` (MSE), LoRA on the backbone and the head trained in full (peft's
SEQ_CLS task puts `score` in `modules_to_save`), through transformers' Trainer.

An adapter folder holds peft's adapter (LoRA + head) and `regression.json` (REGRESSION_FILE):
how to turn the head's output back into dollars and how the text was cut. That file is what
makes `hf:<base> -o adapter=<folder>` a regressor (harness/predictors/hf/regression.py).
"""
from __future__ import annotations

import math
import resource
import time
import warnings
from pathlib import Path

from harness import jsonio
from harness.finetune.layout import CHECKPOINTS
from harness.fingerprint import weights_fingerprint
from harness.predictors.hf.regression_head import REGRESSION_FILE, load_backbone, load_tokenizer, to_prices

PRECISIONS = ("auto", "bf16", "fp32")


def resolve_precision(precision: str) -> str:
    """bf16 where the hardware multiplies bf16 natively (CUDA with bf16, a CPU with AMX/avx512_bf16); a
    recipe resolves `auto` itself (Recipe.resolved_precision), direct callers (benchmarks) here."""
    import torch

    from harness.predictors.hf.hardware import fast_precision

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return fast_precision("cuda" if torch.cuda.is_available() else "cpu")


class _Examples:
    """Tokenized texts with standardised log-price labels (a map-style dataset for the Trainer)."""

    def __init__(self, tokenizer, pairs, max_length: int, mean: float, std: float):
        enc = tokenizer([text for text, _ in pairs], truncation=True, max_length=max_length)
        self.input_ids = enc["input_ids"]
        self.labels = [(math.log(price) - mean) / std for _, price in pairs]

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}

    def tokens(self) -> int:
        return sum(len(ids) for ids in self.input_ids)


def _check_pairs(pairs, name: str) -> None:
    for n, (text, price) in enumerate(pairs):
        if not isinstance(text, str) or not text:
            raise ValueError(f"{name}[{n}]: empty text")
        if not isinstance(price, (int, float)) or not math.isfinite(price) or price <= 0:
            raise ValueError(f"{name}[{n}]: price must be a finite number > 0, got {price!r}")


def _last_checkpoint(out_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    folder = out_dir / CHECKPOINTS
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _head_in_checkpoints(head: dict):
    """A callback that writes the regression file into every checkpoint: each is then an adapter
    folder that `hf: -o adapter=` evaluates (a checkpoint's curve point on the leaderboard)."""
    from transformers import TrainerCallback

    class HeadInCheckpoints(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                jsonio.write_json_atomic(folder / REGRESSION_FILE, head)

    return HeadInCheckpoints()


def train_regression(*, model_dir: Path, train: list[tuple[str, float]], validation: list[tuple[str, float]],
                     out_dir: Path, lora: dict, learning_rate: float, schedule: str, warmup_ratio: float,
                     epochs: float | None, max_steps: int | None, batch_size: int, grad_accum: int, max_length: int,
                     seed: int, precision: str, eval_every: int | None, save_every: int | None, resume: bool,
                     callbacks: list, truncation_side: str = "right") -> dict:
    """Train a LoRA + scalar-head regressor of log(price) on (prompt text, price) pairs and save it
    into out_dir (checkpoints under out_dir/checkpoints every save_every steps; resume=True goes on
    from the last one). Returns the summary: loss curve, validation MAE in dollars, speed, memory."""
    import numpy as np
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import DataCollatorWithPadding, PrinterCallback, Trainer, set_seed

    _check_pairs(train, "train")
    _check_pairs(validation, "validation")
    if not train:
        raise ValueError("train: no examples")
    out_dir = Path(out_dir)
    logs = np.log([price for _, price in train])
    head = {"objective": "regression", "target": "log(price)", "mean": float(logs.mean()),
            "std": float(max(logs.std(), 1e-6)), "max_length": int(max_length),
            "padding_side": "right", "truncation_side": truncation_side, "base_weights": weights_fingerprint(model_dir)}
    precision = resolve_precision(precision)
    warnings.filterwarnings("ignore", message=".*is deprecated and will be removed in v6.*", category=FutureWarning)
    set_seed(seed)
    tokenizer = load_tokenizer(model_dir, truncation_side)
    # bf16: the frozen backbone is stored in bf16 (its matmuls run natively, no per-step casts),
    # the trained weights (LoRA, head) stay fp32 under autocast.
    model = load_backbone(model_dir, tokenizer, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
    # layers_to_transform (optional): LoRA on these layers only; on the top third, backward stops early (2x faster)
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=int(lora["r"]), lora_alpha=int(lora["alpha"]),
                        lora_dropout=float(lora.get("dropout", 0.0)), target_modules=list(lora["target_modules"]),
                        layers_to_transform=lora.get("layers_to_transform"))
    model = get_peft_model(model, config)
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    train_set = _Examples(tokenizer, train, max_length, head["mean"], head["std"])
    eval_set = _Examples(tokenizer, validation, max_length, head["mean"], head["std"]) if validation else None

    def validation_mae(prediction) -> dict:
        guesses = np.array(to_prices(np.asarray(prediction.predictions).reshape(-1), head))
        truths = np.array([price for _, price in validation])
        return {"mae": float(np.abs(guesses - truths).mean())}

    args = _training_args(out_dir, seed=seed, learning_rate=learning_rate, schedule=schedule,
                          warmup_ratio=warmup_ratio, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                          grad_accum=grad_accum, bf16=precision == "bf16",
                          eval_every=eval_every if eval_set else None, save_every=save_every)
    trainer = Trainer(model=model, args=args, train_dataset=train_set, eval_dataset=eval_set,
                      data_collator=DataCollatorWithPadding(tokenizer), compute_metrics=validation_mae,
                      callbacks=[_head_in_checkpoints(head), *(callbacks or [])])
    trainer.remove_callback(PrinterCallback)         # the caller's callbacks say what to show
    checkpoint = _last_checkpoint(out_dir) if resume else None
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=checkpoint)
    train_s = time.perf_counter() - t0
    evaluated = [e for e in trainer.state.log_history if "eval_mae" in e]
    last = evaluated[-1] if evaluated and evaluated[-1]["step"] == trainer.state.global_step else None
    final = last or (trainer.evaluate() if eval_set else {})
    # The regression file is written last: while it is absent the folder is no (complete) adapter.
    (out_dir / REGRESSION_FILE).unlink(missing_ok=True)
    model.save_pretrained(str(out_dir))
    jsonio.write_json_atomic(out_dir / REGRESSION_FILE, head)
    return _summary(trainer, checkpoint=checkpoint, precision=precision, train_set=train_set, train_s=train_s,
                    final=final, head=head)


def _training_args(out_dir: Path, *, seed, learning_rate, schedule, warmup_ratio, epochs, max_steps, batch_size,
                   grad_accum, bf16: bool, eval_every, save_every):
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out_dir / CHECKPOINTS), seed=seed, data_seed=seed,
        learning_rate=learning_rate, lr_scheduler_type=schedule, warmup_steps=float(warmup_ratio),
        num_train_epochs=float(epochs or 1.0), max_steps=int(max_steps) if max_steps else -1,
        per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum, bf16=bf16, use_cpu=not torch.cuda.is_available(),
        logging_steps=1, eval_strategy="steps" if eval_every else "no", eval_steps=eval_every or None,
        save_strategy="steps" if save_every else "no", save_steps=save_every or 500,
        include_num_input_tokens_seen="non_padding", report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, remove_unused_columns=False)


def _summary(trainer, *, checkpoint, precision, train_set, train_s, final, head) -> dict:
    """What the training did: curves (train loss per step, validation MAE in dollars), speed, memory."""
    import torch

    state, args = trainer.state, trainer.args
    tokens = state.num_input_tokens_seen - getattr(trainer, "_initial_num_input_tokens_seen", 0)
    summary = {
        "objective": "regression", "precision": precision, "resumed_from": checkpoint, "steps": state.global_step,
        "examples_seen": state.global_step * args.per_device_train_batch_size * args.gradient_accumulation_steps,
        "train_examples": len(train_set), "train_tokens": train_set.tokens(),
        "train_loss": [{"step": e["step"], "loss": e["loss"]} for e in state.log_history if "loss" in e],
        "validation_mae": [{"step": e["step"], "mae": e["eval_mae"]} for e in state.log_history if "eval_mae" in e],
        "final_validation_mae": final.get("eval_mae"),
        "train_s": round(train_s, 2), "tokens_per_s": round(tokens / train_s, 1) if train_s else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "head": head,
    }
    if torch.cuda.is_available():
        summary["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return summary
