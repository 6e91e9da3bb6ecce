"""Hostile options (issue 10, classes 8 and 9): wrong types, ranges, unknown names, secrets.

Every CLI case runs `pricebench run` in-process and must end with exit 2, one line naming the
option, no traceback, and no store folder. Options are validated when the predictor is built,
so none of these loads a model, opens a connection or writes anything. The last part checks
what is stored: `predictor.spec` (the options the runner hashes and writes to manifest.json)
with URL credentials scrubbed, and the option declarations themselves.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.predictors import BACKENDS, ModelSpec, make_predictor, predictor_class, register_backend
from harness.predictors.options import looks_like_credential
from tests._hostile import assert_one_line_error, cli
from tests._suite_support import NoisyPredictor
from tests.test_store import CountingPredictor

REPO = Path(__file__).resolve().parent.parent
SECRET = "sk-hostile-7f3c9e1d"          # must never be echoed or stored
OPENAI, ANTHROPIC, HF, VLLM = ("openai:gpt-4o-mini", "anthropic:claude-3-5-sonnet-20240620",
                               "hf:smollm2-135m-instruct", "vllm:HuggingFaceTB/SmolLM2-135M-Instruct")
SDKS = {"openai": "openai", "anthropic": "anthropic", "baseline": "sklearn"}


@pytest.fixture(autouse=True)
def _custom_backends():
    register_backend("testonly", NoisyPredictor)
    register_backend("counting", CountingPredictor)


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail loudly if an hf case gets as far as resolving (converting, loading) the model."""
    import harness.predictors.hf.predictor as hf

    def touched(target):
        raise AssertionError(f"hf model {target} was touched before the options were validated")

    monkeypatch.setattr(hf, "resolve_target", touched)


def _run(capsys, tmp_path, data_dir, model, *args):
    pytest.importorskip(SDKS.get(model.split(":")[0], "harness"))
    store = tmp_path / "S"
    code, out, err = cli(capsys, "--data-dir", data_dir, "--store", store, "run", "--task", "amazon8",
                         "--model", model, *args)
    return store, code, out, err


# --- class 8: types, ranges, unknown names, quant / prompt that would only fork a run id --------
# (model, extra argv, words the one error line must contain)
BAD_OPTIONS = {
    "reference-unknown": ("reference:human", ["-o", "foo=bar"], ["'foo'", "unknown option", "takes no model options"]),
    "reference-batch-abc": ("reference:human", ["-o", "batch_size=abc"], ["'batch_size'", "an integer >= 1", "'abc'"]),
    "reference-batch-zero": ("reference:human", ["-o", "batch_size=0"], ["'batch_size'", ">= 1"]),
    "reference-batch-negative": ("reference:human", ["-o", "batch_size=-5"], ["'batch_size'", ">= 1", "-5"]),
    "reference-batch-bool": ("reference:human", ["-o", "batch_size=true"], ["'batch_size'", "integer"]),
    "reference-batch-fraction": ("reference:human", ["-o", "batch_size=2.5"], ["'batch_size'", "integer"]),
    "reference-typo": ("reference:human", ["-o", "bach_size=4"], ["'bach_size'", "did you mean 'batch_size'"]),
    "reference-quant": ("reference:human", ["--quant", "4bit"], ["'quant'", "recorded run", "drop --quant"]),
    "reference-prompt": ("reference:human", ["--prompt", "chat"], ["'prompt'", "drop --prompt"]),
    "baseline-quant": ("baseline:random", ["--quant", "8bit"], ["'quant'", "drop --quant"]),
    "baseline-prompt": ("baseline:random", ["--prompt", "base"], ["'prompt'", "drop --prompt"]),
    "baseline-unknown": ("baseline:random", ["-o", "n_estimators=5"], ["'n_estimators'", "unknown option"]),
    "openai-concurrency-abc": (OPENAI, ["-o", "concurrency=abc"], ["'concurrency'", "an integer >= 1", "'abc'"]),
    "openai-concurrency-zero": (OPENAI, ["-o", "concurrency=0"], ["'concurrency'", ">= 1"]),
    "openai-timeout-abc": (OPENAI, ["-o", "timeout=abc"], ["'timeout'", "a number > 0"]),
    "openai-timeout-negative": (OPENAI, ["-o", "timeout=-1"], ["'timeout'", "> 0"]),
    "openai-timeout-nan": (OPENAI, ["-o", "timeout=NaN"], ["'timeout'", "a number"]),
    "openai-retries-negative": (OPENAI, ["-o", "max_retries=-1"], ["'max_retries'", ">= 0"]),
    "openai-delay-negative": (OPENAI, ["-o", "delay=-0.5"], ["'delay'", ">= 0"]),
    "openai-temperature-range": (OPENAI, ["-o", "temperature=5"], ["'temperature'", "<= 2"]),
    "openai-max-tokens-list": (OPENAI, ["-o", "max_tokens=[8]"], ["'max_tokens'", "integer"]),
    "openai-typo": (OPENAI, ["-o", "concurency=4"], ["'concurency'", "did you mean 'concurrency'", "max_retries"]),
    "openai-base-url-no-scheme": (OPENAI, ["-o", "base_url=localhost:8000"], ["'base_url'", "http(s)://"]),
    "openai-quant": (OPENAI, ["--quant", "4bit"], ["'quant'", "--quant none"]),
    "openai-headers-unknown": (OPENAI, ["-o", 'headers={"X-Title": "pricebench"}'], ["'headers'", "unknown option"]),
    "anthropic-retries-abc": (ANTHROPIC, ["-o", "max_retries=abc"], ["'max_retries'", "an integer >= 0"]),
    "anthropic-batch-fraction": (ANTHROPIC, ["-o", "batch_size=1.5"], ["'batch_size'", "integer"]),
    "anthropic-prefill-word": (ANTHROPIC, ["-o", "prefill=maybe"], ["'prefill'", "true or false"]),
    "anthropic-temperature-range": (ANTHROPIC, ["-o", "temperature=1.5"], ["'temperature'", "<= 1"]),
    "anthropic-seed-unknown": (ANTHROPIC, ["-o", "seed=1"], ["'seed'", "unknown option"]),
    "anthropic-base-prompt": (ANTHROPIC, ["--prompt", "base"], ["'prompt'", "--prompt chat"]),
    "hf-batch-abc": (HF, ["-o", "batch_size=abc"], ["'batch_size'", "an integer >= 1"]),
    "hf-batch-negative": (HF, ["-o", "batch_size=-5"], ["'batch_size'", ">= 1"]),
    "hf-max-new-tokens-zero": (HF, ["-o", "max_new_tokens=0"], ["'max_new_tokens'", ">= 1"]),
    "hf-decoding": (HF, ["-o", "decoding=beam"], ["'decoding'", "greedy, topk-weighted", "'beam'"]),
    "hf-device": (HF, ["-o", "device=gpu"], ["'device'", "cuda:N"]),
    "hf-dtype": (HF, ["-o", "dtype=int8"], ["'dtype'", "bfloat16"]),
    "hf-top-k-fraction": (HF, ["-o", "top_k=2.5"], ["'top_k'", "integer"]),
    "hf-trust-word": (HF, ["-o", "trust_remote_code=sure"], ["'trust_remote_code'", "true or false"]),
    "hf-linear-kernel": (HF, ["-o", "linear_kernel=mkl"], ["'linear_kernel'", "auto, aten"]),
    "hf-typo": (HF, ["-o", "max_new_token=4"], ["'max_new_token'", "did you mean 'max_new_tokens'"]),
    "hf-api-option": (HF, ["-o", "concurrency=4"], ["'concurrency'", "unknown option"]),
    "vllm-typo": (VLLM, ["-o", "max_new_token=8"], ["'max_new_token'", "did you mean", "engine_args"]),
    "vllm-gpu-memory": (VLLM, ["-o", "gpu_memory_utilization=1.5"], ["'gpu_memory_utilization'", "<= 1"]),
    "vllm-timeout-zero": (VLLM, ["-o", "timeout=0"], ["'timeout'", "> 0"]),
    "vllm-engine-args-string": (VLLM, ["-o", "engine_args=swap"], ["'engine_args'", "a mapping"]),
    "custom-typo": ("testonly:echo", ["-o", "suffx=USD"], ["'suffx'", "did you mean 'suffix'"]),
    "custom-type": ("counting:x", ["-o", "temperature=warm"], ["'temperature'", "a number"]),
    "custom-range": ("counting:x", ["-o", "temperature=-1"], ["'temperature'", ">= 0"]),
}


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_bad_option_is_one_line_and_writes_nothing(case, capsys, tmp_path, data_dir, no_model_load):
    model, args, needles = BAD_OPTIONS[case]
    store, code, out, err = _run(capsys, tmp_path, data_dir, model, *args)
    line = assert_one_line_error(code, err, *needles, exit_code=2)
    assert "ValidationError" not in line and "pydantic" not in line and out == ""
    assert not store.exists()


# --- class 9: credentials as options or headers are refused, and never echoed -------------------
SECRETS = {
    "openai-API_KEY": (OPENAI, f"API_KEY={SECRET}", "API_KEY"),
    "openai-api_key": (OPENAI, f"api_key={SECRET}", "api_key"),
    "openai-openai_api_key": (OPENAI, f"openai_api_key={SECRET}", "openai_api_key"),
    "openai-token": (OPENAI, f"token={SECRET}", "token"),
    "openai-headers-authorization": (OPENAI, f'headers={{"Authorization": "Bearer {SECRET}"}}', "headers.Authorization"),
    "openai-default-headers-api-key": (OPENAI, f'default_headers={{"api-key": "{SECRET}"}}', "default_headers.api-key"),
    "anthropic-Authorization": (ANTHROPIC, f"Authorization=Bearer {SECRET}", "Authorization"),
    "anthropic-x-api-key": (ANTHROPIC, f"x-api-key={SECRET}", "x-api-key"),
    "anthropic-extra-headers-cookie": (ANTHROPIC, f'extra_headers={{"Cookie": "s={SECRET}"}}', "extra_headers.Cookie"),
    "hf-hf_token": (HF, f"hf_token={SECRET}", "hf_token"),
    "hf-HF_TOKEN": (HF, f"HF_TOKEN={SECRET}", "HF_TOKEN"),
    "vllm-engine-args-hf_token": (VLLM, f'engine_args={{"hf_token": "{SECRET}"}}', "engine_args.hf_token"),
    "reference-secret": ("reference:human", f"secret={SECRET}", "secret"),
    "custom-password": ("testonly:echo", f"password={SECRET}", "password"),
    "custom-apiKey": ("testonly:echo", f"apiKey={SECRET}", "apiKey"),
    "custom-session": ("counting:x", f"session={SECRET}", "session"),
}


@pytest.mark.parametrize("case", SECRETS)
def test_credential_option_is_refused_and_never_echoed(case, capsys, tmp_path, data_dir, no_model_load):
    model, pair, field = SECRETS[case]
    store, code, out, err = _run(capsys, tmp_path, data_dir, model, "-o", pair)
    assert_one_line_error(code, err, f"field '{field}'", "credential", "api_key_env=NAME", exit_code=2)
    assert SECRET not in err + out
    assert not store.exists()


def test_api_key_env_is_not_a_credential():
    pytest.importorskip("openai")
    predictor = make_predictor(ModelSpec(OPENAI, options={"api_key_env": "MY_OPENAI_KEY"}))
    assert predictor.key_env_name == "MY_OPENAI_KEY"
    with pytest.raises(InputError, match="api_key_env"):
        make_predictor(ModelSpec(OPENAI, options={"api_key_env": f"{SECRET}!"}))   # not a variable name


# --- URL userinfo: connect with it, store and hash without it ----------------------------------
USER, PASSWORD = "alice-b0b9", "pw-5e6f7a8b"


@pytest.mark.parametrize("model", [OPENAI, ANTHROPIC])
def test_url_userinfo_is_scrubbed_from_spec_identity_and_info(model, data_dir):
    pytest.importorskip(model.split(":")[0])
    from harness.runs.runner import run_identity
    from harness.tasks import load_task

    task = load_task("amazon8", data_dir=data_dir)
    given = {"base_url": f"http://{USER}:{PASSWORD}@127.0.0.1:8000/v1?api_key={SECRET}&v=1", "concurrency": 2}
    predictor = make_predictor(ModelSpec(model, options=given))
    stored = predictor.spec.options
    assert stored["base_url"] == "http://127.0.0.1:8000/v1?api_key=***&v=1" and stored["concurrency"] == 2
    assert given["base_url"].startswith(f"http://{USER}:")             # the caller's dict is not modified
    assert predictor._connect_url == given["base_url"]                  # the connection keeps its credentials
    identity, rid = run_identity(task, predictor.spec, predictor)
    manifest_part = {"run_id": rid, "model": predictor.spec.name, "options": predictor.spec.options,
                     "identity": identity, "info": predictor.run_info(), "label": predictor.label()}
    text = json.dumps(manifest_part, default=str)
    for secret in (USER, PASSWORD, SECRET):
        assert secret not in text
    assert predictor._scrub(f"connect to {given['base_url']} failed ({PASSWORD})").count("***") >= 2
    # the same server with other credentials is the same run
    plain = make_predictor(ModelSpec(model, options={**given, "base_url": "http://127.0.0.1:8000/v1?api_key=x&v=1"}))
    assert run_identity(task, plain.spec, plain)[1] == rid


def test_url_userinfo_is_scrubbed_in_any_option():
    predictor = make_predictor(ModelSpec("testonly:echo", options={"suffix": f"https://{USER}:{PASSWORD}@example.org/x"}))
    assert predictor.spec.options == {"suffix": "https://example.org/x"}
    assert USER not in json.dumps(predictor.spec.identity())


# --- the declarations ---------------------------------------------------------------------------
# The central set this replaced: each backend's runtime options must be exactly these, restricted to
# the options it takes, or stored run ids would change (tests/test_run_ids_pinned.py pins a few).
OLD_RUNTIME_OPTIONS = {"batch_size", "concurrency", "timeout", "max_retries", "device", "progress", "delay", "workers",
                       "api_key_env", "python", "linear_kernel",
                       "prefix_cache",   # hf, added with in-context examples: speed only, never hashed
                       "max_batch_tokens"}   # hf, batch by length where replies cannot change: never hashed
BUILT_IN = ("reference", "baseline", "hf", "vllm", "openai", "anthropic")


@pytest.mark.parametrize("backend", BUILT_IN)
def test_runtime_options_are_the_old_central_set(backend):
    pytest.importorskip(SDKS.get(backend, "harness"))
    options = predictor_class(backend).Options
    assert options.runtime_names() == OLD_RUNTIME_OPTIONS & set(options.model_fields)
    assert not [name for name in options.model_fields if looks_like_credential(name)]


def test_declaring_a_credential_option_is_refused():
    from harness.predictors import Options

    with pytest.raises(TypeError, match="api_key"):
        class Leaky(Options):
            api_key: str = ""


@pytest.mark.parametrize("doc, backends", [("docs/open-models.md", ["hf"]), ("docs/apis-and-vllm.md",
                                                                             ["openai", "anthropic", "vllm"])])
def test_docs_list_every_declared_option(doc, backends):
    text = (REPO / doc).read_text(encoding="utf-8")
    for backend in backends:
        pytest.importorskip(SDKS.get(backend, "harness"))
        for name in predictor_class(backend).Options.model_fields:
            assert f"`{name}`" in text, f"{doc} does not document {backend} option {name!r}"


def test_gpu_need_is_declared_by_the_backend():
    from harness.suite import Job
    from harness.suite.executors import job_resources

    assert job_resources(Job("amazon8", HF, options=(("device", '"cuda:1"'),)))["num_gpus"] == 1
    assert job_resources(Job("amazon8", VLLM, options=(("device", '"cuda"'),)))["num_gpus"] == 1
    assert job_resources(Job("amazon8", HF))["num_gpus"] == 0
    assert job_resources(Job("amazon8", "testonly:echo", options=(("device", '"cuda"'),)))["num_gpus"] == 0
    assert "GPU_BACKENDS" not in vars(__import__("harness.suite.executors", fromlist=["x"]))
    assert set(BUILT_IN) <= set(BACKENDS)


@pytest.mark.parametrize("value", ["9" * 5000, "[" * 100_000 + "]" * 100_000])
def test_an_unusable_option_value_is_one_line(value, capsys, tmp_path, data_dir):
    store, code, _, err = _run(capsys, tmp_path, data_dir, "reference:human", "-o", f"batch_size={value}")
    assert_one_line_error(code, err, "batch_size", "too long or too deeply nested", exit_code=2)
    assert len(err) < 500 and not store.exists()


@pytest.mark.parametrize("body, words", [
    ("a: &a [1, 2]\nopenai: *a\n", "aliases"),
    ("openai:\n  gpt-4o-mini: {input: .nan, output: 1}\n", "non-numeric price"),
    ("openai:\n  gpt-4o-mini: {input: 1, output: 1}\nopenai: {}\n", "key given twice"),
])
def test_a_hostile_price_table_is_one_line(body, words, capsys, tmp_path, data_dir):
    table = tmp_path / "prices.yaml"
    table.write_text(body)
    store, code, _, err = _run(capsys, tmp_path, data_dir, "openai:gpt-4o-mini", "-o", f"prices={table}")
    assert_one_line_error(code, err, "prices.yaml", words, exit_code=2)
    assert not store.exists()
