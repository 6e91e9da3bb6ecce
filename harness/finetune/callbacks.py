"""What a training run shows and records as it goes, as transformers TrainerCallbacks:

- `ProgressBar`: one tqdm bar over optimizer steps with the last loss, tokens/s and the ETA;
- `ValidationMAE`: at each evaluation, greedy replies on a few validation prompts, scored like
  the evaluator (the course's parse, a guess of 0 when no number), appended to the trainer's
  log history, so the curve is saved with every checkpoint and survives a resume.
"""
from __future__ import annotations

import time

from tqdm.auto import tqdm
from transformers import TrainerCallback

from harness.scoring import parse_price


class ProgressBar(TrainerCallback):
    """`enabled`: None (a bar where stderr is a terminal), True / False, or a factory `enabled(total, desc)`
    returning an object with update(), set_postfix() and close() (a suite's harness.progress.job_progress)."""

    def __init__(self, description: str, enabled=None):
        self.description, self.enabled = description, enabled
        self.bar, self.loss, self.t0, self.tokens0 = None, None, 0.0, 0

    def on_train_begin(self, args, state, control, **kwargs):
        if callable(self.enabled):
            self.bar = self.enabled(state.max_steps, self.description)
            self.bar.n = state.global_step          # a resumed training starts at its checkpoint
        else:
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.description, unit="step",
                            disable=None if self.enabled is None else not self.enabled, dynamic_ncols=True)
        self.t0, self.tokens0 = time.perf_counter(), state.num_input_tokens_seen

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:         # logged after on_step_end: show this step's loss now
            self.loss = logs["loss"]
            self._show(state)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)
            self._show(state)

    def _show(self, state):
        if self.bar is None:
            return
        elapsed = time.perf_counter() - self.t0
        postfix = {"tok/s": f"{(state.num_input_tokens_seen - self.tokens0) / max(elapsed, 1e-9):.0f}"}
        if self.loss is not None:
            postfix = {"loss": f"{self.loss:.3f}", **postfix}
        self.bar.set_postfix(postfix)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def greedy_prices(model, tokenizer, prompts: list[str], *, max_new_tokens: int = 6, batch_size: int = 8,
                  autocast=None) -> list[float | None]:
    """Greedy replies to base prompts (left padding, special tokens as the evaluator adds them),
    parsed as the course does."""
    import contextlib

    import torch

    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    prices = []
    try:
        for start in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[start:start + batch_size], return_tensors="pt", padding=True).to(device)
            with torch.no_grad(), (autocast or contextlib.nullcontext)():
                out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, temperature=None,
                                     top_p=None, top_k=None, pad_token_id=tokenizer.pad_token_id)
            replies = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            prices += [parse_price(reply) for reply in replies]
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return prices


class ValidationMAE(TrainerCallback):
    """Mean absolute error of greedy replies on `pairs` (validation items) at each evaluation."""

    def __init__(self, pairs, tokenizer, autocast=None):
        self.pairs, self.tokenizer, self.autocast = list(pairs), tokenizer, autocast

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if not self.pairs or model is None:
            return
        t0 = time.perf_counter()
        prices = greedy_prices(model, self.tokenizer, [p.prompt for p in self.pairs], autocast=self.autocast)
        errors = [abs((price if price is not None else 0.0) - p.price) for price, p in zip(prices, self.pairs)]
        state.log_history.append({
            "step": state.global_step, "epoch": state.epoch, "eval_mae": round(sum(errors) / len(errors), 4),
            "eval_mae_items": len(errors), "eval_mae_parsed": sum(price is not None for price in prices),
            "eval_mae_s": round(time.perf_counter() - t0, 3)})
