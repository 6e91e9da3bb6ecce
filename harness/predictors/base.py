"""The one interface every predictor family implements.

A predictor is built from a ModelSpec, is told the task once (`prepare`: fit, load, connect),
then turns Requests into Replies. The runner owns everything else: batching into the store,
parsing, scoring, resuming and caching.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from harness.prompts import Request

QUANTS = ("none", "8bit", "4bit")
# Options that change speed, not the question (device and linear_kernel change only float rounding,
# as another BLAS build would): kept out of a run's identity.
RUNTIME_OPTIONS = frozenset({"batch_size", "concurrency", "timeout", "max_retries", "device", "progress",
                             "delay", "workers", "api_key_env", "python", "linear_kernel"})


@dataclass(frozen=True)
class ModelSpec:
    """What to run: `backend:target`, quantization, prompt style and backend options."""

    name: str                       # e.g. "hf:HuggingFaceTB/SmolLM2-135M-Instruct"
    quant: str = "none"
    prompt: str | None = None       # "base" | "chat" | None (the predictor's default)
    options: dict = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def target(self) -> str:
        return self.name.split(":", 1)[1] if ":" in self.name else ""

    def identity(self) -> dict:
        return {"name": self.name, "quant": self.quant, "prompt": self.prompt,
                "options": {k: v for k, v in sorted(self.options.items()) if k not in RUNTIME_OPTIONS}}


@dataclass
class Reply:
    """What a model said about one item.

    raw: the text it produced (None if the call failed). price: set by predictors that
    produce a number directly (references, regressors); otherwise the runner parses `raw`.
    error: set when the request failed (network, API); such items are retried on re-run.
    """

    raw: str | None
    price: float | None = None
    usage: dict = field(default_factory=dict)   # e.g. prompt_tokens, completion_tokens, cost_usd
    error: str | None = None
    latency_s: float | None = None


class Predictor:
    """Base class: subclasses set `default_prompt` and implement `predict_batch` (or `predict`)."""

    default_prompt = "base"
    batch_size = 32
    kind = "model"                  # label for reports: baseline, open-base, frontier, ...

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        if spec.quant not in QUANTS:
            raise ValueError(f"quantization must be one of {QUANTS}, got {spec.quant!r}")
        self.batch_size = int(spec.options.get("batch_size", self.batch_size))

    @property
    def prompt_style(self) -> str:
        return self.spec.prompt or self.default_prompt

    def identity(self, task) -> dict:
        """Extra identity beyond the spec (e.g. a weights or data hash). Must be cheap."""
        return {}

    def label(self) -> str:
        return self.spec.name

    def prepare(self, task) -> None:
        """Fit, load or connect. Called once, and only when some item needs predicting."""

    def predict_batch(self, requests: list[Request]) -> list[Reply]:
        raise NotImplementedError

    def predict(self, requests: list[Request]) -> Iterator[tuple[Request, Reply]]:
        """Yield (request, reply) in any order; the default batches `predict_batch`."""
        for start in range(0, len(requests), self.batch_size):
            batch = requests[start:start + self.batch_size]
            yield from zip(batch, self.predict_batch(batch))

    def run_info(self) -> dict:
        """Manifest extras: load time, device, peak memory, ..."""
        return {}

    def close(self) -> None:
        """Free models, sessions, servers."""
