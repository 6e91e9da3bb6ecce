"""hf: predictor, for real on CPU: SmolLM2-135M-Instruct and Gemma-3-270M base (PyPI wheels).

Small slices keep the file to a few minutes on 2 cores; the models come from
harness.predictors.hf.testmodels (fetched and converted once into ~/.cache/pricebench).
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.predictors import ModelSpec, make_predictor
from harness.runs.runner import run
from harness.scoring import parse_price
from harness.tasks import load_task

pytest.importorskip("transformers")
SMOL, GEMMA = "smollm2-135m-instruct", "gemma-3-270m"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def task(data_dir):
    return load_task("amazon8", data_dir=data_dir, eval_slice="0:8")


@pytest.fixture(scope="module")
def smol_folder():
    from harness.predictors.hf.testmodels import model_folder

    return model_folder(SMOL)


def _env(data_dir) -> dict:
    return {**os.environ, "PRICEBENCH_DATA": str(data_dir), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false"}


# --- cheap: bad input, identity ------------------------------------------------------------
def test_bad_targets_and_options_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        make_predictor(ModelSpec("hf:/no/such/folder"))
    with pytest.raises(InputError, match="GGUF file not found"):
        make_predictor(ModelSpec(f"hf:{tmp_path}/missing.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="config.json"):
        make_predictor(ModelSpec(f"hf:{tmp_path}/empty"))
    with pytest.raises(InputError, match="decoding"):
        make_predictor(ModelSpec("hf:smollm2-135m-instruct", options={"decoding": "beam"}))
    with pytest.raises(InputError, match="linear_kernel"):
        make_predictor(ModelSpec("hf:smollm2-135m-instruct", options={"linear_kernel": "mkl"}))
    with pytest.raises(InputError, match="adapter"):
        make_predictor(ModelSpec("hf:smollm2-135m-instruct", options={"adapter": str(tmp_path / "nope")}))


def test_weights_fingerprint_sees_a_one_byte_change(tmp_path):
    from harness.fingerprint import weights_fingerprint

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    blob = bytearray(os.urandom(3 << 20))
    (folder / "model.safetensors").write_bytes(blob)
    before = weights_fingerprint(folder)
    assert weights_fingerprint(folder) == before
    blob[-1] ^= 1
    (folder / "model.safetensors").write_bytes(blob)
    assert weights_fingerprint(folder) != before
    (folder / "config.json").write_text('{"model_type": "gemma3"}')
    assert len({before, weights_fingerprint(folder)}) == 2


@pytest.mark.slow
def test_identity_and_defaults_of_the_two_models(task, smol_folder):
    from harness.fingerprint import weights_fingerprint

    smol, gemma = (make_predictor(ModelSpec(f"hf:{a}")) for a in (SMOL, GEMMA))
    assert smol.identity(task)["weights"] != gemma.identity(task)["weights"]
    # The alias and the GGUF file it came from name the same weights; a plain folder names itself.
    assert make_predictor(ModelSpec(f"hf:{smol_folder}")).identity(task)["weights"] == weights_fingerprint(smol_folder)
    assert smol.default_prompt == "chat" and smol.kind == "open-instruct"
    assert gemma.default_prompt == "base" and gemma.kind == "open-base"
    assert smol.identity(task) != make_predictor(ModelSpec(f"hf:{SMOL}", options={"max_new_tokens": 8})).identity(task)


# --- real runs ---------------------------------------------------------------------------
QUANT_CASES = [(SMOL, "none"), (SMOL, "8bit"), (SMOL, "4bit"), (GEMMA, "none"), (GEMMA, "8bit"), (GEMMA, "4bit")]


@pytest.fixture(scope="module")
def quant_runs(data_dir, tmp_path_factory):
    """Each (model, quant) once on 4 items with the base prompt; results shared by the tests below."""
    store = tmp_path_factory.mktemp("quant-runs")
    return {case: run("amazon8", f"hf:{case[0]}", quant=case[1], prompt="base", eval_slice="0:4",
                      data_dir=data_dir, store=store, progress=False) for case in QUANT_CASES}


@pytest.mark.slow
@pytest.mark.parametrize("case", QUANT_CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_model_at_each_quantization_replies_parsed_and_stored(quant_runs, case):
    result = quant_runs[case]
    stored = [json.loads(line) for line in open(result.path / "predictions.jsonl")]
    assert [r["id"] for r in stored] == [f"amazon8-{i:04d}" for i in range(4)]
    for record in stored:
        assert isinstance(record["raw"], str) and record["raw"].strip()
        assert record["price"] == parse_price(record["raw"])
        assert record["usage"]["prompt_tokens"] > 150 and 0 < record["usage"]["completion_tokens"] <= 6
    info = result.manifest["info"]
    assert info["quant"] == case[1] and info["device"] == "cpu"
    assert info["load_s"] > 0 and info["generate_s"] > 0 and info["peak_rss_mib"] > 0
    assert result.manifest["usage"]["prompt_tokens"] == sum(r["usage"]["prompt_tokens"] for r in stored)
    assert result.manifest["kind"] == ("open-instruct" if case[0] == SMOL else "open-base")


@pytest.mark.slow
@pytest.mark.parametrize("model", [SMOL, GEMMA])
def test_quantization_shrinks_the_model_and_changes_the_run(quant_runs, model):
    runs = {q: quant_runs[(model, q)] for q in ("none", "8bit", "4bit")}
    memory = {q: r.manifest["info"]["model_memory_mib"] for q, r in runs.items()}
    assert memory["4bit"] < memory["8bit"] < memory["none"]
    assert len({r.run_id for r in runs.values()}) == 3
    # SmolLM2 fp32 answers every base prompt with a number.
    if model == SMOL:
        assert runs["none"].metrics["parse_failures"] == 0


@pytest.mark.slow
def test_chat_prompt_continues_the_assistant_prefix(task, data_dir, store):
    predictor = make_predictor(ModelSpec(f"hf:{SMOL}"))
    from harness.prompts import build_requests

    text = predictor.render(build_requests(task, task.eval_items()[:1], "chat")[0])
    assert text.endswith("<|im_start|>assistant\nPrice is $") and "<|im_start|>system\nYou estimate prices" in text
    result = run("amazon8", f"hf:{SMOL}", eval_slice="0:4", data_dir=data_dir, store=store, progress=False)
    assert result.manifest["prompt_style"] == "chat"
    assert result.df["raw"].map(lambda r: isinstance(r, str)).all()


@pytest.mark.slow
def test_onednn_linear_kernel_gives_the_default_kernels_replies(data_dir, tmp_path):
    runs = {kernel: run("amazon8", f"hf:{SMOL}", prompt="base", options={"linear_kernel": kernel}, eval_slice="0:8",
                        data_dir=data_dir, store=tmp_path / kernel, progress=False) for kernel in ("auto", "aten")}
    assert runs["auto"].run_id == runs["aten"].run_id          # a kernel is how, not what: same run

    def stored(kernel):
        run_dir = tmp_path / kernel / runs[kernel].run_id
        info = json.loads((run_dir / "manifest.json").read_text())["info"]
        return info["linear_kernel"], [(r["id"], r["raw"]) for r in map(json.loads, open(run_dir / "predictions.jsonl"))]

    (auto_kernel, auto_replies), (aten_kernel, aten_replies) = stored("auto"), stored("aten")
    from harness.predictors.hf.onednn_linear import onednn_available

    # SmolLM2: 30 layers x 7 projections + the LM head.
    assert auto_kernel == ("onednn (211 layers)" if onednn_available() else "aten") and aten_kernel == "aten"
    assert auto_replies == aten_replies and len(auto_replies) == 8


@pytest.mark.slow
def test_topk_weighted_decoding_is_the_courses_weighted_digit_mean(data_dir, store):
    result = run("amazon8", f"hf:{SMOL}", prompt="base", options={"decoding": "topk-weighted", "top_k": 3},
                 eval_slice="0:4", data_dir=data_dir, store=store, progress=False)
    # SmolLM2 spells numbers digit by digit: a weighted mean of single digits lies in [1, 9].
    assert all(1 <= p <= 9 for p in result.df["price"])
    assert (result.df["usage"].map(lambda u: u["completion_tokens"]) == 1).all()


@pytest.mark.slow
def test_gguf_file_and_zero_lora_adapter(data_dir, store, tmp_path):
    """A .gguf path runs via its cached safetensors copy; a LoRA adapter that starts at zero
    (peft's default init) must leave the replies unchanged but still make a different run."""
    from harness.predictors.hf.testmodels import gguf_file

    plain = run("amazon8", f"hf:{SMOL}", prompt="base", eval_slice="0:4", data_dir=data_dir, store=store,
                progress=False)
    via_gguf = run("amazon8", f"hf:{gguf_file(SMOL)}", prompt="base", eval_slice="0:4", data_dir=data_dir,
                   store=store, progress=False)
    assert list(via_gguf.df["raw"]) == list(plain.df["raw"])

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from harness.predictors.hf.testmodels import model_folder

    base = AutoModelForCausalLM.from_pretrained(model_folder(SMOL), dtype=torch.float32)
    get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"])).save_pretrained(tmp_path / "lora")
    tuned = run("amazon8", f"hf:{SMOL}", prompt="base", options={"adapter": str(tmp_path / "lora")},
                eval_slice="0:4", data_dir=data_dir, store=store, progress=False)
    assert tuned.manifest["kind"] == "open-finetuned" and tuned.run_id != plain.run_id
    assert list(tuned.df["raw"]) == list(plain.df["raw"])


@pytest.mark.slow
def test_killed_run_resumes_and_matches_an_uninterrupted_one(data_dir, tmp_path):
    args = ["--store", None, "run", "--task", "amazon8", "--slice", "0:8", "--model", f"hf:{SMOL}",
            "--prompt", "base", "-o", "batch_size=2", "--json"]
    env = _env(data_dir)

    def cli(store_dir):
        return [str(BIN / "pricebench"), *[str(store_dir) if a is None else a for a in args]]

    killed_store = tmp_path / "killed"
    proc = subprocess.Popen(cli(killed_store), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    lines = 0
    while time.time() < deadline and proc.poll() is None:
        files = glob.glob(str(killed_store / "*" / "predictions.jsonl"))
        lines = sum(1 for _ in open(files[0])) if files else 0
        if lines >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_dir = Path(glob.glob(str(killed_store / "*"))[0])
    partial = sum(1 for _ in open(run_dir / "predictions.jsonl"))
    assert 2 <= partial < 8 and not (run_dir / "metrics.json").exists()

    resumed = json.loads(subprocess.run(cli(killed_store), env=env, capture_output=True, text=True,
                                        check=True).stdout)
    whole = run("amazon8", f"hf:{SMOL}", prompt="base", options={"batch_size": 2}, eval_slice="0:8",
                data_dir=data_dir, store=tmp_path / "whole", progress=False)
    assert resumed["run_id"] == whole.run_id
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["sessions"][-1]["resumed_from"] == partial and manifest["sessions"][-1]["items"] == 8 - partial

    def replies(store_dir):
        return [(r["id"], r["raw"], r["price"]) for r in map(json.loads, open(store_dir / whole.run_id /
                                                                                 "predictions.jsonl"))]
    assert replies(killed_store) == replies(tmp_path / "whole")
    assert resumed["metrics"] == whole.metrics


@pytest.mark.slow
@pytest.mark.parametrize("prompt", ["base", "chat"])
def test_exported_task_under_real_lm_eval_gives_the_same_mae(prompt, data_dir, store, tmp_path, smol_folder):
    export = subprocess.run([str(BIN / "pricebench"), "--data-dir", str(data_dir), "export-lm-eval", "amazon8",
                             str(tmp_path / "task"), "--slice", "0:8", "--prompt", prompt],
                            capture_output=True, text=True, check=True)
    name = "pricebench_amazon8" + ("_chat" if prompt == "chat" else "")
    assert f"--tasks {name} " in export.stdout
    chat_flag = ["--apply_chat_template"] if prompt == "chat" else []
    subprocess.run([str(BIN / "lm_eval"), "--model", "hf", "--model_args", f"pretrained={smol_folder},dtype=float32",
                    "--device", "cpu", "--include_path", str(tmp_path / "task"), "--tasks", name,
                    "--batch_size", "8", "--log_samples", "--output_path", str(tmp_path / "out"), *chat_flag],
                   env=_env(data_dir), check=True, capture_output=True)
    results = json.loads(open(glob.glob(str(tmp_path / "out" / "**" / "results_*.json"), recursive=True)[0]).read())
    lm = results["results"][name]
    samples = [json.loads(line) for line in
               open(glob.glob(str(tmp_path / "out" / "**" / "samples_*.jsonl"), recursive=True)[0])]

    ours = run("amazon8", f"hf:{SMOL}", prompt=prompt, eval_slice="0:8", data_dir=data_dir, store=store,
               progress=False)
    assert lm["mae,none"] == pytest.approx(ours.metrics["mae"], abs=1e-9)
    assert lm["hit_rate,none"] == pytest.approx(ours.metrics["hit_rate"])
    assert lm["rmsle,none"] == pytest.approx(ours.metrics["rmsle"])
    # Identical prompts, item for item: the exact text each model continued (chat: after its template).
    from harness.prompts import build_requests

    predictor = make_predictor(ModelSpec(f"hf:{SMOL}"))
    task = ours_task(data_dir)
    ours_prompts = {r.item.id: predictor.render(r) for r in build_requests(task, task.eval_items(), prompt)}
    assert {s["doc"]["id"]: s["arguments"]["gen_args_0"]["arg_0"] for s in samples} == ours_prompts
    if prompt == "chat":
        assert all(text.endswith("<|im_start|>assistant\nPrice is $") for text in ours_prompts.values())
    theirs = {s["doc"]["id"]: parse_price(s["resps"][0][0]) for s in samples}
    assert theirs == dict(zip(ours.df["id"], ours.df["price"]))


def ours_task(data_dir):
    return load_task("amazon8", data_dir=data_dir, eval_slice="0:8")


def test_export_writes_a_self_contained_lm_eval_task(data_dir, tmp_path):
    """The folder holds the rendered prompts and scoring hooks that agree with harness.scoring."""
    import importlib.util

    import yaml

    from harness.exports.lm_eval import export_lm_eval
    from harness.runs.runner import make_record
    from harness.predictors import Reply
    from harness.prompts import build_requests

    task = load_task("amazon8", data_dir=data_dir, eval_slice="0:5")
    path = export_lm_eval(task, tmp_path / "task", max_new_tokens=7)
    loader = type("Loader", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda l, node: ("function", l.construct_scalar(node)))
    spec = yaml.load(path.read_text(), Loader=loader)
    assert spec["output_type"] == "generate_until" and spec["generation_kwargs"]["max_gen_toks"] == 7
    assert spec["process_results"] == ("function", "utils.process_results")
    docs = [json.loads(line) for line in open(spec["dataset_kwargs"]["data_files"]["test"])]
    requests = build_requests(task, task.eval_items(), "base")
    assert [d["prompt"] for d in docs] == [r.prompt for r in requests]
    module_spec = importlib.util.spec_from_file_location("exported_utils", tmp_path / "task" / "utils.py")
    utils = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(utils)
    for doc, request, reply in zip(docs, requests, ["12.99", "$1,299 or so", "no idea", "-3", "450"]):
        ours = make_record(request, Reply(raw=reply))
        theirs = utils.process_results(doc, [reply])
        assert theirs["mae"] == ours["error"] and theirs["rmsle"] == ours["sle"]
        assert theirs["hit_rate"] == 100.0 * (ours["colour"] == "green")
        assert theirs["parse_failure_rate"] == 100.0 * (not ours["parsed"])

    # The chat prompt: its parts as columns that lm-eval's chat fields name, beside the base task.
    chat_path = export_lm_eval(task, tmp_path / "task", prompt="chat")
    chat = yaml.load(chat_path.read_text(), Loader=loader)
    assert chat["task"] == "pricebench_amazon8_chat" and path.exists()
    assert (chat["description"], chat["doc_to_text"], chat["gen_prefix"]) == ("system", "user", "assistant_prefix")
    chat_docs = [json.loads(line) for line in open(chat["dataset_kwargs"]["data_files"]["test"])]
    chat_requests = build_requests(task, task.eval_items(), "chat")
    assert [[{"role": "system", "content": d["system"]}, {"role": "user", "content": d["user"]},
             {"role": "assistant", "content": d["assistant_prefix"]}] for d in chat_docs] == \
        [list(r.messages) for r in chat_requests]
    assert "--apply_chat_template" in chat_path.read_text().splitlines()[1]
