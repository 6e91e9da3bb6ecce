"""The one interface every predictor family implements.

A predictor is built from a ModelSpec, is told the task once (`prepare`: fit, load, connect),
then turns Requests into Replies. The runner owns everything else: batching into the store,
parsing, scoring, resuming and caching.

Each predictor class declares its options in one place, its `Options` class (see
harness/predictors/options.py), and which --quant / --prompt values it takes (`quants`,
`prompts`). Building a predictor validates the spec against them, so a bad spec fails before
anything is written, and leaves `predictor.spec` as what may be stored and hashed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterator

from harness.errors import InputError
from harness.kinds import known_kind
from harness.predictors.options import Options, scrub_secrets
from harness.prompts import STYLES, Request

QUANTS = ("none", "8bit", "4bit")


@dataclass(frozen=True)
class ModelSpec:
    """What to run: `backend:target`, quantization, prompt style and backend options.

    `runtime_options`: the option names that do not change the run identity, set by the
    predictor that validated this spec (`predictor.spec`); None = unknown (`identity` is then told).
    """

    name: str                       # e.g. "hf:HuggingFaceTB/SmolLM2-135M-Instruct"
    quant: str = "none"
    prompt: str | None = None       # "base" | "chat" | None (the predictor's default)
    options: dict = field(default_factory=dict)
    runtime_options: frozenset | None = field(default=None, compare=False, repr=False)

    @property
    def backend(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def target(self) -> str:
        return self.name.split(":", 1)[1] if ":" in self.name else ""

    def identity(self, runtime_names: frozenset | None = None) -> dict:
        """The options as given minus the runtime ones (raw values: stored run ids never change).
        The runtime names are this spec's own (`predictor.spec`), else `runtime_names` (those of
        the backend's Options class: the registry imports this module, so it cannot ask)."""
        skip = self.runtime_options if self.runtime_options is not None else runtime_names
        if skip is None:
            raise ValueError(f"{self.name}: which options are runtime ones is unknown; use predictor.spec")
        return {"name": self.name, "quant": self.quant, "prompt": self.prompt,
                "options": {k: v for k, v in sorted(self.options.items()) if k not in skip}}


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
    """Base class: subclasses set `default_prompt` and implement `predict_batch` (or `predict`).

    Subclasses declare their options by subclassing `Predictor.Options` (or their parent's) as
    a nested `class Options`; the validated values are `self.options`.
    """

    default_prompt = "base"
    batch_size = 32
    kind = known_kind("model")      # the row's kind in reports (harness/kinds.py: baseline, frontier, ...)
    Options = Options               # the options this backend takes (harness/predictors/options.py)
    quants: tuple = QUANTS          # the --quant values it takes ...
    quant_advice = ""               # ... and what to say to any other
    prompts: tuple = (None, *STYLES)  # the --prompt values it takes (None = its default) ...
    prompt_advice = ""              # ... and what to say to any other
    reads_prompt = True             # False: it sees the item, not the prompt (recorded runs, regressors)
    reads_task_files = False        # True: it reads the task's data folder beyond its items (recorded
                                    # runs): the Ray executor runs it on the driver, which has that folder

    def __init__(self, spec: ModelSpec):
        self.options = self.validate(spec)
        self.spec = self.sanitized(spec)
        if self.options.batch_size is not None:
            self.batch_size = self.options.batch_size

    @classmethod
    def validate(cls, spec: ModelSpec) -> Options:
        """The spec's quant, prompt and options checked against this backend's declaration."""
        backend = spec.backend
        if spec.quant not in QUANTS:
            raise InputError(f"quantization must be one of {', '.join(QUANTS)}, got {spec.quant!r}", field="quant")
        if spec.quant not in cls.quants:
            raise InputError(f"{backend}: {cls.quant_advice or 'takes --quant ' + ' | '.join(cls.quants)}",
                             field="quant")
        if spec.prompt is not None and spec.prompt not in STYLES:
            raise InputError(f"prompt style must be one of {', '.join(STYLES)}, got {spec.prompt!r}", field="prompt")
        if spec.prompt not in cls.prompts:
            takes = " | ".join(p for p in cls.prompts if p)
            raise InputError(f"{backend}: {cls.prompt_advice or 'takes --prompt ' + takes}", field="prompt")
        return cls.Options.parse(spec.options, backend=backend)

    @classmethod
    def sanitized(cls, spec: ModelSpec) -> ModelSpec:
        """What may be stored and hashed: the options as given (credentials were refused by
        `validate`), URL userinfo and credential query parameters scrubbed, runtime names known."""
        return dataclasses.replace(spec, options=scrub_secrets(dict(spec.options or {})),
                                   runtime_options=cls.Options.runtime_names())

    @classmethod
    def needs_gpu(cls, options: dict) -> bool:
        """Whether a job with these (raw) options needs a GPU (the Ray executor asks for one):
        a declared `device` option naming CUDA (hf, vllm)."""
        return "device" in cls.Options.model_fields and str(options.get("device", "")).startswith("cuda")

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

    def environment(self) -> dict:
        """Where this session's replies come from, beyond the run id (recorded per session, after
        `prepare`): device, kernel, batch size, threads, library versions."""
        return {"batch_size": self.batch_size}

    def reply_environment(self) -> dict:
        """The part of `environment()` that can change replies: a run resumed under a different one
        would mix two environments' answers under one id, so the runner refuses it (unless told
        to, and then marks the run mixed). Recorded runs, fitted baselines, APIs: nothing local."""
        return {}

    def close(self) -> None:
        """Free models, sessions, servers."""
