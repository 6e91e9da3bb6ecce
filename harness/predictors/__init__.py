"""Predictor registry: `backend:target` names resolve to a module's `create(spec)`.

Modules are imported only when used, so the core install needs none of the heavy
backends. Register more with `register_backend("myprefix", factory)`.
"""
from __future__ import annotations

import importlib
from typing import Callable

from harness.errors import InputError
from harness.predictors.base import ModelSpec, Predictor, Reply

BACKENDS: dict[str, str | Callable[[ModelSpec], Predictor]] = {
    "reference": "harness.predictors.reference",             # recorded runs (human, GPT-4o, ...)
    "baseline": "harness.predictors.baselines.predictor",    # sklearn / gensim, fitted per task
    "hf": "harness.predictors.hf.predictor",                 # transformers (dtype, bnb 8/4-bit, GGUF, PEFT)
    "vllm": "harness.predictors.vllm",                       # vLLM (own virtualenv)
    "openai": "harness.predictors.api.openai",               # OpenAI + any OpenAI-compatible base_url
    "anthropic": "harness.predictors.api.anthropic",         # Anthropic Messages API
}

EXTRAS = {"baseline": "baselines", "openai": "api", "anthropic": "api"}  # backend -> pip extra


def register_backend(prefix: str, factory: Callable[[ModelSpec], Predictor] | str) -> None:
    BACKENDS[prefix] = factory


def make_predictor(spec: ModelSpec) -> Predictor:
    if ":" not in spec.name:
        raise InputError(f"model {spec.name!r} must be 'backend:name' (backends: {', '.join(BACKENDS)})",
                         field="model")
    factory = BACKENDS.get(spec.backend)
    if factory is None:
        raise InputError(f"unknown backend {spec.backend!r} (known: {', '.join(BACKENDS)})", field="model")
    if isinstance(factory, str):
        try:
            module = importlib.import_module(factory)
        except ModuleNotFoundError as e:
            raise InputError(f"backend {spec.backend!r} needs an extra that is not installed ({e.name}); "
                             f"pip install 'pricebench[{EXTRAS.get(spec.backend, spec.backend)}]'", field="model") from None
        factory = module.create
    return factory(spec)


__all__ = ["BACKENDS", "ModelSpec", "Predictor", "Reply", "make_predictor", "register_backend"]
