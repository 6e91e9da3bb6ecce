"""Stored runs keep their ids: run ids computed by pricebench before options were declared per
backend (commit f819c76, `run_identity` of each spec below on the course data), hard-coded.

This is the one place where hard-coded values are right: they pin compatibility. Nothing is
run: each case builds the task and the predictor and hashes the identity, from the spec the
caller built and from `predictor.spec` (what the runner stores), which must agree. The hf
cases need the two cached test models (they are skipped rather than downloaded).
"""
from __future__ import annotations

import importlib.util

import pytest

from harness.predictors import ModelSpec, make_predictor, register_backend
from harness.runs.runner import run_identity
from harness.tasks import load_task
from tests._slow_predictor import SlowPredictor
from tests._suite_support import NoisyPredictor
from tests.test_store import CountingPredictor

# (run id, task, model, quant, prompt, options)
PINNED = [
    ("a4efb779b3ce1b05", "amazon8", "reference:human", "none", None, {}),
    ("00e2ad622f7c3f53", "amazon8", "reference:gpt-4o-2024-08-06", "none", None, {}),
    ("97a0162a088433f7", "appliances", "reference:llama-3.1-8b-qlora-appliances", "none", None, {}),
    ("a4efb779b3ce1b05", "amazon8", "reference:human", "none", None, {"batch_size": 10}),
    # Changed on purpose (were 895f3930393a3f37 and 2307cb18f1ae9b32): the leakage guard (issue 14)
    # leaves 12 train items out of amazon8's split (same normalized title or text as an evaluation
    # item), so the train hash in a baseline's identity changed.
    ("15ae08546e499f8d", "amazon8", "baseline:random", "none", None, {}),
    ("9368ddb431383660", "amazon8", "baseline:tfidf-ridge", "none", None, {}),
    ("1938f00e556f2a74", "amazon8", "openai:gpt-4o-mini", "none", None, {}),
    ("1938f00e556f2a74", "amazon8", "openai:gpt-4o-mini", "none", None,
     {"concurrency": 4, "timeout": 30, "max_retries": 2, "delay": 0.5, "api_key_env": "MY_KEY"}),
    ("26c1ca5127dfe5a2", "amazon8", "openai:/models/smol", "none", "base",
     {"base_url": "http://127.0.0.1:8000/v1", "concurrency": 2, "max_tokens": 8, "temperature": 0, "seed": 1}),
    ("0013efe41216fa96", "amazon8", "anthropic:claude-3-5-sonnet-20240620", "none", None, {}),
    ("0e234f3691ebaee3", "amazon8", "anthropic:claude-3-5-sonnet-20240620", "none", None,
     {"prefill": False, "temperature": 0, "max_retries": 3}),
    ("3db5ed4dce4b75da", "amazon8", "vllm:HuggingFaceTB/SmolLM2-135M-Instruct", "none", None,
     {"dtype": "float32", "enforce_eager": True, "max_new_tokens": 8, "python": "/nonexistent/python", "timeout": 600}),
    ("768c616f765632a5", "amazon8", "vllm:HuggingFaceTB/SmolLM2-135M-Instruct", "4bit", "chat",
     {"max_model_len": 512, "engine_args": {"swap_space": 1}, "device": "cuda"}),
    ("6b8b3888650d33ca", "amazon8", "hf:smollm2-135m-instruct", "none", "base",
     {"batch_size": 4, "max_new_tokens": 6, "dtype": "float32", "device": "cpu"}),
    # Changed on purpose (was 4ad721c890b7c0b3): a bitsandbytes model's replies depend on the batch
    # size, so it is part of the run id now (issue 15); the same spec at batch 8 is another run.
    ("a39aec41e81d4fe5", "amazon8", "hf:gemma-3-270m", "4bit", "base",
     {"dtype": "float32", "compute_dtype": "float32", "batch_size": 16, "linear_kernel": "aten"}),
    ("c4fdb861579b633f", "amazon8", "hf:smollm2-135m-instruct", "none", "chat",
     {"dtype": "float32", "decoding": "topk-weighted", "top_k": 3}),
    # custom backends registered by the tests (their options are declared like any backend's)
    ("e4117c80113d5b2b", "amazon8", "counting:x", "none", None, {"temperature": 0.5, "batch_size": 3}),
    ("a4f9ee8651714948", "amazon8", "testonly:echo", "none", None, {"suffix": "USD"}),
    ("73b14fcd5b866491", "amazon8", "slowtest:x", "none", None, {"delay": 0.02}),
]
NEEDS = {"baseline": ["sklearn"], "openai": ["openai"], "anthropic": ["anthropic"], "hf": ["torch", "transformers"]}


@pytest.fixture(scope="module")
def tasks(data_dir):
    cache = {}
    return lambda name: cache.setdefault(name, load_task(name, data_dir=data_dir))


def _skip_unless_available(model: str) -> None:
    backend, target = model.split(":", 1)
    for module in NEEDS.get(backend, []):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    if backend == "hf":
        from harness.cache import cache_root
        from harness.predictors.hf import testmodels

        gguf = cache_root() / "gguf" / testmodels._FETCHERS[target][0]
        if not (gguf.exists() and (cache_root() / "models" / target / "config.json").exists()):
            pytest.skip(f"test model {target} is not cached (python -m harness.predictors.hf.testmodels)")


@pytest.mark.parametrize("rid, task, model, quant, prompt, options", PINNED,
                         ids=[f"{m}-{i}" for i, (_, _, m, *_rest) in enumerate(PINNED)])
def test_stored_run_ids_do_not_change(rid, task, model, quant, prompt, options, tasks):
    register_backend("counting", CountingPredictor)
    register_backend("testonly", NoisyPredictor)
    register_backend("slowtest", SlowPredictor)
    _skip_unless_available(model)
    spec = ModelSpec(model, quant=quant, prompt=prompt, options=options)
    predictor = make_predictor(spec)
    assert run_identity(tasks(task), predictor.spec, predictor)[1] == rid     # what the runner stores
    assert run_identity(tasks(task), spec, predictor)[1] == rid               # a spec built by hand
    assert predictor.spec.options == options                                  # as given: nothing filled in
