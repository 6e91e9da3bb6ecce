"""The openai: predictor against a real OpenAI-compatible server: `transformers serve` of
SmolLM2 on 127.0.0.1 (started here, stopped by PID), chat and plain completions.

The server decodes greedily at temperature 0, so its completions must equal a plain
transformers generate on the same prompt: proof that the predictor sends the task's prompt.
"""
from __future__ import annotations

import importlib.util
import re
import secrets
from pathlib import Path

import pandas as pd
import pytest

from harness.errors import InputError
from harness.predictors import ModelSpec, make_predictor
from harness.runs.runner import run
from harness.tasks import load_task

N_ITEMS = 4
MAX_TOKENS = 8


@pytest.fixture(scope="module")
def server(smollm2, tmp_path_factory):
    """`transformers serve` on a free 127.0.0.1 port; its base_url. Stopped by PID."""
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("transformers serve needs `pip install 'transformers[serving]'` (.ci/setup.d/51-*)")
    from harness.predictors.api.local_server import transformers_serve

    with transformers_serve(smollm2, log_path=tmp_path_factory.mktemp("serve") / "serve.log") as base_url:
        yield base_url


@pytest.fixture
def api_key(monkeypatch) -> str:
    key = "sk-test-" + secrets.token_hex(16)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


@pytest.fixture(scope="module")
def task(data_dir):
    return load_task("amazon8", data_dir=data_dir, eval_slice=f"0:{N_ITEMS}")


def _assert_no_key(folder: Path, key: str) -> None:
    for path in Path(folder).rglob("*"):
        if path.is_file():
            assert key not in path.read_text(encoding="utf-8", errors="replace"), path


def _greedy(folder: str, prompts: list[str]) -> list[str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    out = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            generated = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_TOKENS,
                                       do_sample=False, pad_token_id=tokenizer.eos_token_id)
        out.append(tokenizer.decode(generated[0, ids.shape[1]:], skip_special_tokens=True))
    return out


def _options(server: str) -> dict:
    return {"base_url": server, "concurrency": 2, "timeout": 300, "max_retries": 1, "delay": 0.1,
            "max_tokens": MAX_TOKENS}


@pytest.mark.slow
def test_chat_completions(server, smollm2, task, store, api_key):
    result = run(task, f"openai:{smollm2}", prompt="chat", options=_options(server), store=store, progress=False)
    df = result.df
    assert df["failure"].isna().all(), df["failure"].tolist()
    assert all(isinstance(raw, str) and raw for raw in df["raw"])
    usage = pd.DataFrame(list(df["usage"]))
    assert (usage["prompt_tokens"] > 50).all() and usage["completion_tokens"].between(1, MAX_TOKENS).all()
    assert result.manifest["kind"] == "open-served" and result.manifest["prompt_style"] == "chat"
    assert result.manifest["info"]["base_url"] == server
    assert "cost_usd" not in usage        # a local model is in no price table: no cost, not $0
    _assert_no_key(result.path, api_key)


@pytest.mark.slow
def test_plain_completions_equal_transformers_greedy(server, smollm2, task, store, api_key):
    from harness.prompts import build_requests

    result = run(task, f"openai:{smollm2}", prompt="base", options=_options(server), store=store, progress=False)
    df = result.df
    assert df["failure"].isna().all(), df["failure"].tolist()
    prompts = [r.prompt for r in build_requests(task, task.eval_items(), "base")]
    assert df["raw"].tolist() == _greedy(smollm2, prompts)
    assert df["parsed"].all()
    _assert_no_key(result.path, api_key)


@pytest.mark.slow
def test_unknown_model_is_recorded_not_retried(server, task, store, api_key):
    result = run(task, "openai:not-the-served-model", options=_options(server), store=store, progress=False)
    assert result.df["failure"].str.startswith("fatal after 1 attempt(s): BadRequestError").all()
    # every request failed: the run is "failed" (shown as such, never ranked, exit 1 from the CLI)
    assert result.manifest["status"] == "failed" and result.failed_all and result.manifest["info"]["retries"] == 0


def test_fine_tuned_names_are_labelled():
    predictor = make_predictor(ModelSpec("openai:ft:gpt-4o-mini-2024-07-18:my-org::A1b2C3"))
    assert predictor.kind == "frontier-finetuned" and "fine-tuned" in predictor.label()
    assert predictor.price == {"input": 0.30, "output": 1.20}       # ft:gpt-4o-mini rates, not gpt-4o-mini's
    plain = make_predictor(ModelSpec("openai:gpt-4o-mini"))
    assert plain.kind == "frontier" and plain.price == {"input": 0.15, "output": 0.60}
    assert make_predictor(ModelSpec("openai:m", options={"base_url": "http://127.0.0.1:1/v1"})).kind == "open-served"


def test_price_table_override(tmp_path, monkeypatch):
    table = tmp_path / "prices.yaml"
    table.write_text("openai:\n  my-model: {input: 1.0, output: 2.0}\n")
    monkeypatch.setenv("PRICEBENCH_PRICES", str(table))
    assert make_predictor(ModelSpec("openai:my-model-v2")).price == {"input": 1.0, "output": 2.0}
    table.write_text("openai:\n  broken: {input: cheap, output: 2.0}\n")
    with pytest.raises(InputError, match="broken.input"):
        make_predictor(ModelSpec("openai:other", options={"prices": str(table)}))


def test_missing_key_is_a_clear_error(task, store, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(InputError, match="OPENAI_API_KEY"):
        run(task, "openai:gpt-4o-mini", store=store, progress=False)


@pytest.mark.slow
def test_sampled_decoding_against_a_server_that_ignores_n_fails_each_item_saying_so(server, smollm2, task, store,
                                                                                     api_key):
    """transformers serve answers one choice whatever `n` asks: no median of one sample."""
    options = {**_options(server), "decoding": "median", "samples": 4}
    result = run(task, f"openai:{smollm2}", prompt="base", options=options, store=store, progress=False)
    assert result.df["failure"].str.contains("asked for n=4 samples, the server answered 1: it ignores n").all()
    assert result.manifest["status"] == "failed" and result.manifest["info"]["retries"] == 0


def test_sampled_decoding_enters_the_run_id_only_when_asked(task):
    from harness.runs.runner import run_identity

    def run_id(**options):
        predictor = make_predictor(ModelSpec("openai:gpt-4o-mini", options=options))
        return run_identity(task, predictor.spec, predictor)[1]

    greedy = make_predictor(ModelSpec("openai:gpt-4o-mini"))
    assert greedy.identity(task) == {} and "n" not in greedy._params()
    ids = [run_id(), run_id(decoding="median"), run_id(decoding="mean"), run_id(decoding="median", seed=1),
           run_id(decoding="median", samples=4), run_id(decoding="median", temperature=0.5)]
    assert len(set(ids)) == len(ids)
    median = make_predictor(ModelSpec("openai:gpt-4o-mini", options={"decoding": "median", "samples": 5}))
    assert median._params() == {"model": "gpt-4o-mini", "max_tokens": 8, "temperature": 1.0, "seed": 0, "n": 5}
    assert median.identity(task) == {"decoding": "median", "n": 5, "temperature": 1.0, "seed": 0}


@pytest.mark.parametrize("options, field, words", [
    ({"samples": 4}, "samples", "samples is for decoding=median or mean (decoding is greedy)"),
    ({"decoding": "median", "temperature": 0}, "temperature", "temperature must be above 0"),
    ({"decoding": "beam"}, "decoding", "one of greedy, median, mean, got 'beam'"),
    ({"decoding": "median", "samples": 0}, "samples", "an integer >= 1 and <= 128, got 0"),
])
def test_bad_sampling_options_name_their_field(options, field, words):
    with pytest.raises(InputError, match=re.escape(words)) as caught:
        make_predictor(ModelSpec("openai:gpt-4o-mini", options=options))
    assert field in str(caught.value)
