"""The loss on the completion only, with the output layer applied only where the loss is taken.

A prompt is ~170 tokens and its completion ~6: TRL's fused LM head scores every position on
the CPU (it keeps only the valid ones on Triton devices), so SmolLM2's 49k-word output layer
and its softmax run 30 times more often than the loss needs. `CompletionLossTrainer` runs the
model's body, gathers the hidden states of the positions whose next token is a label, applies
the LM head there only and takes the cross entropy: the same loss (checked in the tests), less
work. And a right-padded batch needs no attention mask: under the causal mask no real token
ever sees the padding after it, so the mask is dropped and attention takes its mask-free causal
kernel (the loss is identical; padded positions carry no label). Wrapped models (DDP, FSDP,
DeepSpeed) and eval calls that want logits take TRL's path.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from trl import SFTTrainer


def _causal_lm(model):
    """The transformers *ForCausalLM under a PEFT wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def right_padded(mask) -> bool:
    """Whether every row of an attention mask is ones, then zeros (or has no mask at all)."""
    return mask is None or bool((mask[:, 1:] <= mask[:, :-1]).all())


def completion_loss(model, inputs: dict, num_items_in_batch=None, *, drop_mask: bool = True) -> tuple[torch.Tensor, dict]:
    """(loss, stats) for a batch with `labels` (-100 = no loss): the body on every token, the LM
    head only on the positions that predict a label. Stats: labelled positions, top-1 hits.
    drop_mask: leave out a right-padded batch's attention mask (False: keep it, for comparison)."""
    causal = _causal_lm(model)
    body = getattr(causal, causal.base_model_prefix)
    body_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "num_items_in_batch")}
    body_inputs["use_cache"] = False
    if drop_mask and "position_ids" not in body_inputs and right_padded(body_inputs.get("attention_mask")):
        body_inputs.pop("attention_mask", None)
    hidden = body(**body_inputs).last_hidden_state
    labels = inputs["labels"][:, 1:]
    mask = labels != -100
    head = causal.get_output_embeddings()
    logits = head(hidden[:, :-1][mask].to(head.weight.device))
    config = causal.config.get_text_config()
    softcap = getattr(config, "final_logit_softcapping", None)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    targets = labels[mask].to(logits.device)
    total = F.cross_entropy(logits.float(), targets, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else mask.sum().clamp(min=1)
    with torch.no_grad():
        hits = (logits.argmax(dim=-1) == targets).sum()
    return total / count, {"labelled": int(mask.sum()), "hits": int(hits)}


class CompletionLossTrainer(SFTTrainer):
    """TRL's SFTTrainer with `completion_loss` as its training and evaluation loss; it keeps the
    seconds spent evaluating, so tokens/s can count training alone."""

    eval_seconds = 0.0

    def evaluate(self, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            return super().evaluate(*args, **kwargs)
        finally:
            self.eval_seconds += time.perf_counter() - t0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        unwrapped = self.accelerator.unwrap_model(model)
        plain = unwrapped is model and not self.aux_loss_enabled and self.args.loss_type == "nll" \
            and self.label_smoother is None and self.compute_loss_func is None
        if return_outputs or not plain:
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        mode = "train" if model.training else "eval"
        with self.accelerator.autocast():
            loss, stats = completion_loss(model, inputs, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        if stats["labelled"]:
            self._metrics[mode]["mean_token_accuracy"].append(stats["hits"] / stats["labelled"])
        if mode == "train" and "attention_mask" in inputs:
            self._total_train_tokens += int(inputs["attention_mask"].sum())
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return loss
