"""`hf:<base> -o adapter=<regression adapter>`: the price is the head's number, nothing is generated.

An adapter folder trained with `objective: regression` (harness/finetune/regression.py) holds a
LoRA on the backbone, a one-output head and `regression.json` (how to read the head in dollars).
`hf:`'s `create` (backend.py) sees that file and builds this predictor: the same weights, options, batching,
run identity (weights + adapter fingerprints) and reports as hf:, but each batch is one
forward pass of the prompt through the sequence-classification model, right-padded and cut to
the length it was trained with, and the reply is the price (`parsed`, never a guess of 0).
"""
from __future__ import annotations

import time
from pathlib import Path

from harness.errors import InputError
from harness.predictors.base import ModelSpec, Reply
from harness.fingerprint import weights_fingerprint
from harness.predictors.hf.loading import quantization_config
from harness.predictors.hf.onednn_linear import route_linear_to_onednn
from harness.predictors.hf.predictor import HFPredictor
from harness.predictors.hf.regression_head import load_backbone, load_tokenizer, to_prices


class HFRegressionPredictor(HFPredictor):
    """A backbone with a LoRA + scalar regression head on log(price): one forward pass per batch."""

    generates = False                # nothing generated: no shared-prefix KV reuse either

    def __init__(self, spec: ModelSpec, head: dict | None = None):
        super().__init__(spec)
        self.head = head             # None until prepare() for finetune:<regression recipe>
        trained_on = (head or {}).get("base_weights")
        if trained_on and Path(self.source).is_dir() and weights_fingerprint(self.source) != trained_on:
            raise InputError(f"this regression adapter was trained on other base weights (fingerprint {trained_on}): "
                             f"name that base model", path=self.adapter, field="adapter")

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            side = "left" if (self.head or {}).get("truncation_side") == "left" else "right"   # left: shots before
            self._tokenizer = load_tokenizer(self.source, side)
        return self._tokenizer

    @property
    def default_prompt(self) -> str:
        return "base"                # what the regression recipes train on: the task's completion prompt

    def identity(self, task) -> dict:
        ident = super().identity(task)
        for generation_only in ("max_new_tokens", "decoding", "top_k", "samples", "temperature", "seed", "beam"):
            ident.pop(generation_only, None)
        ident.update(self._head_identity())
        return ident

    def _head_identity(self) -> dict:
        return {"regression_head": {k: self.head[k] for k in ("objective", "mean", "std", "max_length")}}

    def label(self) -> str:
        return super().label().replace(" (", " regression head (", 1)

    def load_model(self):
        from peft import PeftModel

        kwargs = {"dtype": self._dtype()}
        config = quantization_config(self.spec.quant, self._dtype("compute_dtype"))
        if config is not None:
            kwargs.update(quantization_config=config, device_map={"": self.device if self.device != "cuda" else 0})
        model = load_backbone(self.source, self.tokenizer, **kwargs)
        if config is None:
            model.to(self.device)
        model = PeftModel.from_pretrained(model, str(Path(self.adapter).expanduser()))
        model.eval()
        # as hf: does, bitsandbytes layers keep PyTorch's kernels (docs/runs.md)
        onednn = self.linear_kernel == "auto" and self.device == "cpu" and config is None
        return model, route_linear_to_onednn(model) if onednn else 0

    def _generate(self, texts: list[str], style: str, prefix=None, count: bool = True) -> list[Reply]:
        import torch

        enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                             max_length=int(self.head["max_length"]),
                             add_special_tokens=(style == "base")).to(self.device)
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        t0 = time.perf_counter()
        with torch.inference_mode():
            outputs = self.model(**enc).logits[:, 0].float().tolist()
        replies = [Reply(raw=f"{price:.2f}", price=price)
                   for price in (round(p, 2) for p in to_prices(outputs, self.head))]
        return self._account(replies, prompt_tokens, [0] * len(replies), time.perf_counter() - t0, count=count)
