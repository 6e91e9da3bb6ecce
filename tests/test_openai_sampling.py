"""Sampled decoding through the openai: predictor, for real: vLLM's OpenAI-compatible server (it
honours `n` and `seed`, unlike transformers serve) serving SmolLM2 on 127.0.0.1, started here and
stopped by PID. One request per item asks for every sample; the stored reply lists them, the price
is their median, the usage (and so the cost) counts them all, and the samples are those vLLM's own
offline engine draws for the same seed: the server's `n` samples are the samples, not a stand-in."""
from __future__ import annotations

import pandas as pd
import pytest

from harness.errors import InputError
from harness.predictors import ModelSpec, make_predictor
from harness.predictors.numeric import recompute, samples_of
from harness.prompts import build_requests
from harness.runs.runner import run
from harness.tasks import load_task

MAX_TOKENS = 8
SAMPLES = 4


@pytest.fixture(scope="module")
def vllm_python(smollm2) -> str:
    try:
        return make_predictor(ModelSpec(f"vllm:{smollm2}")).worker_python()
    except InputError as e:
        pytest.skip(f"no vLLM here: {e}")


@pytest.fixture(scope="module")
def server(smollm2, vllm_python, tmp_path_factory):
    from harness.predictors.api.local_server import vllm_serve

    args = ("--dtype", "float32", "--max-model-len", "1024", "--enforce-eager")
    with vllm_serve(smollm2, vllm_python, args, log_path=tmp_path_factory.mktemp("vllm") / "serve.log") as url:
        yield url


@pytest.mark.slow
def test_median_of_n_samples_from_one_request_each(server, smollm2, data_dir, store, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-sampling")
    task = load_task("amazon8", data_dir=data_dir, eval_slice="0:3")
    options = {"base_url": server, "max_tokens": MAX_TOKENS, "decoding": "median", "samples": SAMPLES,
               "seed": 7, "timeout": 300, "max_retries": 1, "concurrency": 2}
    result = run(task, f"openai:{smollm2}", prompt="base", options=options, store=store, progress=False)
    df = result.df
    assert df["failure"].isna().all(), df["failure"].tolist()
    usage = pd.DataFrame(list(df["usage"]))
    assert (usage["requests"] == 1).all()                                  # n samples, one request
    assert (usage["completion_tokens"] > MAX_TOKENS).all()                 # every sample counted
    samples = [samples_of(raw) for raw in df["raw"]]
    assert all(len(s) == SAMPLES for s in samples) and len({tuple(s) for s in samples}) == len(samples)
    for raw, price in zip(df["raw"], df["price"]):
        decision = recompute(raw)
        assert (price == decision) if decision is not None else (price != price)
    assert result.manifest["identity"]["predictor"]["decoding"] == "median"

    again = run(task, f"openai:{smollm2}", prompt="base", options=options, store=store.parent / "again",
                progress=False)
    assert again.run_id == result.run_id and again.df["raw"].tolist() == df["raw"].tolist()   # seeded

    offline = make_predictor(ModelSpec(f"vllm:{smollm2}", prompt="base", options={
        "dtype": "float32", "max_model_len": 1024, "enforce_eager": True, "max_new_tokens": MAX_TOKENS,
        "decoding": "median", "samples": SAMPLES, "seed": 7}))
    replies = offline.predict_batch(build_requests(task, task.eval_items(), "base"))
    assert [samples_of(r.raw) for r in replies] == samples
