"""Predictor registry: `backend:target` names resolve to a module's `create(spec)`.

Modules are imported only when used, so the core install needs none of the heavy
backends. Register more with `register_backend("myprefix", factory)`: a Predictor subclass
(which declares its options in a nested `class Options(Predictor.Options)`), or a function
of the spec with a `predictor_class` attribute naming the class it builds.
"""
from __future__ import annotations

import importlib
from typing import Callable

from harness.errors import InputError
from harness.predictors.base import ModelSpec, Predictor, Reply
from harness.predictors.options import Options, option, runtime

BACKENDS: dict[str, str | Callable[[ModelSpec], Predictor]] = {
    "reference": "harness.predictors.reference",             # recorded runs (human, GPT-4o, ...)
    "baseline": "harness.predictors.baselines.predictor",    # sklearn / gensim, fitted per task
    "hf": "harness.predictors.hf.backend",                   # transformers (dtype, bnb 8/4-bit, GGUF, PEFT)
    "vllm": "harness.predictors.vllm",                       # vLLM (own virtualenv)
    "openai": "harness.predictors.api.openai",               # OpenAI + any OpenAI-compatible base_url
    "anthropic": "harness.predictors.api.anthropic",         # Anthropic Messages API
    "finetune": "harness.finetune.predictor",                # a recipe's trained adapter on its hf: base
}

EXTRAS = {"baseline": "baselines", "openai": "api", "anthropic": "api", "finetune": "finetune"}  # backend -> pip extra


def register_backend(prefix: str, factory: Callable[[ModelSpec], Predictor] | str) -> None:
    BACKENDS[prefix] = factory


def _load(backend: str) -> tuple[Callable[[ModelSpec], Predictor] | None, type[Predictor] | None]:
    """(what builds the backend's predictors, the Predictor class it builds if known)."""
    factory = BACKENDS.get(backend)
    if isinstance(factory, str):
        try:
            module = importlib.import_module(factory)
        except ModuleNotFoundError as e:
            raise InputError(f"backend {backend!r} needs an extra that is not installed ({e.name}); "
                             f"pip install 'pricebench[{EXTRAS.get(backend, backend)}]'", field="model") from None
        return module.create, getattr(module, "PREDICTOR", None)
    cls = factory if isinstance(factory, type) else getattr(factory, "predictor_class", None)
    return factory, cls if isinstance(cls, type) and issubclass(cls, Predictor) else None


def predictor_class(backend: str) -> type[Predictor] | None:
    """The Predictor class a backend builds (its option declaration, `needs_gpu`), or None when
    unknown. Imports the backend's module (raises InputError when its extra is missing)."""
    return _load(backend)[1]


def options_class(backend: str) -> type[Options]:
    """The backend's option declaration (the common options when the backend is unknown)."""
    try:
        cls = predictor_class(backend)
    except InputError:
        cls = None
    return (cls or Predictor).Options


def make_predictor(spec: ModelSpec) -> Predictor:
    """Build (and so validate) a predictor: a bad quant, prompt or option is an InputError here,
    before anything is written. Store and hash `predictor.spec`, not `spec` (see Predictor)."""
    if ":" not in spec.name:
        raise InputError(f"model {spec.name!r} must be 'backend:name' (backends: {', '.join(BACKENDS)})",
                         field="model")
    if spec.backend not in BACKENDS:
        raise InputError(f"unknown backend {spec.backend!r} (known: {', '.join(BACKENDS)})", field="model")
    return _load(spec.backend)[0](spec)


__all__ = ["BACKENDS", "ModelSpec", "Options", "Predictor", "Reply", "make_predictor", "option", "options_class",
           "predictor_class", "register_backend", "runtime"]
