"""Every backend gets exactly the rendered in-context prompts: the Anthropic Messages API (the local
fake server logs each request body), an OpenAI-compatible server (`transformers serve` of SmolLM2:
its greedy completions equal transformers' on our prompts), hf (prefix KV reuse gives the replies
of no reuse), vLLM (prefix caching on), and the lm-eval export (the same prompt per item)."""
from __future__ import annotations

import json

import pytest

import harness
from harness.predictors import ModelSpec, make_predictor
from harness.prompts import build_requests
from harness.retrieval import indexes
from harness.tasks import load_task
from tests._fake_anthropic import running
from tests._hostile import assert_one_line_error, cli
from tests._in_context_support import course_rag_message, planted_task

SMOL = "smollm2-135m-instruct"


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRICEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(indexes, "_LOADED", {})


@pytest.fixture
def planted(tmp_path, data_dir):
    path, _ = planted_task(tmp_path / "data", data_dir)
    return load_task(path, data_dir=path.parent, eval_slice="0:4")


@pytest.fixture
def anthropic_server(tmp_path, monkeypatch):
    """tests/_fake_anthropic.py on 127.0.0.1 (no faults), logging every request body; stopped by PID."""
    key = "sk-ant-test-in-context"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    with running({}, tmp_path, key) as server:
        yield server


@pytest.mark.parametrize("shot_format", ["message", "turns"])
def test_anthropic_receives_exactly_the_rendered_messages(planted, anthropic_server, store, shot_format):
    url, log = anthropic_server
    setting = {"shots": 2, "shot_selector": "nearest", "shot_format": shot_format}
    result = harness.run(planted, "anthropic:claude-3-5-sonnet-20240620", in_context=setting, store=store,
                         options={"base_url": url, "max_retries": 0}, progress=False)
    assert result.df["failure"].isna().all()
    received = {}
    for entry in map(json.loads, log.read_text().splitlines()):
        received[entry["messages"][-2]["content"]] = entry           # keyed by the asked item's question
    requests = build_requests(planted.with_in_context(setting), planted.eval_items(), "chat")
    assert len(received) == len(requests) == 4
    for request in requests:
        system, *turns = request.messages
        entry = received[turns[-2]["content"]]
        assert entry["system"] == system["content"] and entry["messages"] == turns   # prefill turn included
        if shot_format == "message":
            assert turns[0]["content"] == course_rag_message(request.item.text, [s.item for s in request.shots])
        else:
            assert len(turns) == 2 * 2 + 2 and turns[1]["content"] == f"Price is ${request.shots[0].item.price:.2f}"
    assert all(len(shots) == 2 for shots in result.df["shots"])


def test_lm_eval_export_renders_the_in_context_prompt_per_item(planted, tmp_path, capsys):
    from harness.exports.lm_eval import export_lm_eval

    task = planted.with_in_context({"shots": 2, "shot_selector": "nearest", "retriever": "bm25"})
    for prompt in ("base", "chat"):
        path = export_lm_eval(task, tmp_path / "lm", prompt=prompt)
        assert path.stem == f"pricebench_planted{'_chat' if prompt == 'chat' else ''}_2shot_nearest_bm25"
        docs = [json.loads(line) for line in path.with_suffix(".jsonl").read_text().splitlines()]
        requests = build_requests(task, task.eval_items(), prompt)
        if prompt == "base":
            assert [d["prompt"] for d in docs] == [r.prompt for r in requests]
        else:
            assert [[d["system"], d["user"], d["assistant_prefix"]] for d in docs] == \
                [[m["content"] for m in r.messages] for r in requests]
        assert [d["shots"] for d in docs] == [[s.item.id for s in r.shots] for r in requests]
        assert "in_context:" in path.read_text() and "retriever: bm25" in path.read_text()
    folder = task.spec.path.parent
    code, _, err = cli(capsys, "export-lm-eval", task.spec.path, tmp_path / "turns", "--data-dir", folder,
                       "--prompt", "chat", "--shots", "2", "--shot-format", "turns")
    assert_one_line_error(code, err, "--shot-format")
    assert not (tmp_path / "turns").exists()


def test_vllm_turns_on_prefix_caching_for_in_context_prompts(planted):
    predictor = make_predictor(ModelSpec("vllm:HuggingFaceTB/SmolLM2-135M-Instruct"))
    shots = build_requests(planted.with_in_context({"shots": 2}), planted.eval_items(), "base")
    plain = build_requests(planted, planted.eval_items(), "base")
    assert predictor.job(shots)["engine"]["enable_prefix_caching"] is True
    assert "enable_prefix_caching" not in predictor.job(plain)["engine"]
    assert [r["prompt"] for r in predictor.job(shots)["requests"]] == [r.prompt for r in shots]


@pytest.mark.slow
def test_hf_prefix_reuse_gives_the_replies_of_no_reuse(data_dir, tmp_path):
    task = load_task("amazon8", data_dir=data_dir, eval_slice="0:8")          # two batches of 4
    setting = {"shots": 3}                       # random: one fixed prefix of ~600 tokens for every prompt
    runs = {mode: harness.run(task, f"hf:{SMOL}", prompt="base", in_context=setting, store=tmp_path / mode,
                              options={"batch_size": 4, "prefix_cache": mode}, progress=False)
            for mode in ("auto", "off")}
    assert runs["auto"].run_id == runs["off"].run_id          # a speed option: the same run
    assert runs["auto"].df["raw"].tolist() == runs["off"].df["raw"].tolist()
    info = runs["auto"].manifest["info"]
    assert info["prefix_cache"].startswith(tuple("123456789")) and "identical" in info["prefix_cache"]
    assert "prefix_cache" not in runs["off"].manifest["info"]
    shared = int(info["prefix_cache"].split()[0])
    assert shared > 300 and all(u["prompt_tokens"] > shared for u in runs["auto"].df["usage"])


@pytest.mark.slow
def test_openai_compatible_server_completes_exactly_the_rendered_base_prompts(planted, store, monkeypatch, tmp_path):
    import importlib.util

    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        pytest.skip("transformers serve needs `pip install 'transformers[serving]'` (.ci/setup.d/51-*)")
    from harness.predictors.api.local_server import transformers_serve
    from harness.predictors.hf.testmodels import model_folder
    from tests.test_openai_predictor import MAX_TOKENS, _greedy

    folder = str(model_folder(SMOL))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-in-context")
    task = planted.with_in_context({"shots": 1, "shot_selector": "nearest"})
    with transformers_serve(folder, log_path=tmp_path / "serve.log") as url:
        result = harness.run(task, f"openai:{folder}", prompt="base", store=store, progress=False,
                             options={"base_url": url, "max_tokens": MAX_TOKENS, "timeout": 300, "max_retries": 1})
    prompts = [r.prompt for r in build_requests(task, task.eval_items(), "base")]
    assert result.df["failure"].isna().all()
    assert result.df["raw"].tolist() == _greedy(folder, prompts)
