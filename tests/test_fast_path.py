"""The hardware-aware fast path: `dtype=fast` for hf: generation and `precision: auto` for training.

fast resolves to bf16 only where the device multiplies bf16 natively (AMX / avx512_bf16 CPUs,
CUDA); elsewhere to the exact fp32 path, whose run id it then shares. A half-precision run's id
holds its batch size; its replies repeat for a given batch size; the length-sorted batches give
the replies of one prompt at a time in item order; and bf16 training's loss stays near fp32's.
"""
from __future__ import annotations

import json

import pytest

from harness.predictors import ModelSpec, make_predictor
from harness.predictors.hf import hardware
from harness.tasks import load_task

pytest.importorskip("transformers")
SMOL = "smollm2-135m-instruct"


@pytest.fixture
def cpu_with(monkeypatch):
    """Pretend the CPU reports these feature flags."""
    def set_flags(*flags: str) -> None:
        monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    return set_flags


@pytest.fixture(scope="module")
def task(data_dir):
    return load_task("amazon8", data_dir=data_dir, eval_slice="0:8")


def test_fast_dtype_and_precision_follow_the_hardware(cpu_with):
    cpu_with("avx512f", "avx512_vnni")
    assert hardware.fast_dtype_name("cpu") == "float32" and hardware.fast_precision("cpu") == "fp32"
    cpu_with("avx512f", "avx512_bf16")
    assert hardware.fast_dtype_name("cpu") == "bfloat16" and hardware.fast_precision("cpu") == "bf16"
    cpu_with("amx_bf16", "amx_tile")
    assert hardware.fast_dtype_name("cpu") == "bfloat16"
    assert hardware.fast_dtype_name("mps") == "float16"


def test_the_real_cpu_flags_are_read():
    flags = hardware.cpu_flags()
    assert isinstance(flags, frozenset)
    if flags:                               # Linux: the kernel's list, e.g. fpu, sse2
        assert all(flag == flag.strip() and flag for flag in flags)


def _identity(task, **options):
    return make_predictor(ModelSpec(f"hf:{SMOL}", prompt="base", options=options)).identity(task)


def test_fast_without_native_bf16_is_the_exact_fp32_run(cpu_with, task):
    cpu_with("avx512f")
    fast, exact = _identity(task, dtype="fast", batch_size=16), _identity(task, batch_size=16)
    assert fast == exact and fast["dtype"] == "float32" and "batch_size" not in fast
    assert _identity(task, dtype="fast", batch_size=4) == fast          # fp32 is batch-invariant


def test_fast_with_native_bf16_is_its_own_run_per_batch_size(cpu_with, task):
    cpu_with("avx512f", "amx_bf16")
    fast16, fast4 = _identity(task, dtype="fast", batch_size=16), _identity(task, dtype="fast", batch_size=4)
    assert fast16["dtype"] == "bfloat16" and fast16["batch_size"] == 16 and fast4["batch_size"] == 4
    assert fast16 != _identity(task, batch_size=16)                     # not the fp32 run
    assert fast16 == _identity(task, dtype="bfloat16", batch_size=16)   # the same run as asking for bf16


def test_recipe_precision_auto_trains_as_the_hardware_allows(cpu_with, tmp_path):
    from harness.finetune.recipe import load_recipe

    path = tmp_path / "auto.yaml"
    path.write_text("name: auto\nbase: hf:smollm2-135m-instruct\ntraining: {precision: auto, device: cpu}\n")
    cpu_with("avx512f")
    recipe = load_recipe(path)
    assert recipe.precision == "auto" and recipe.resolved_precision == "fp32"
    without = recipe.identity()
    cpu_with("avx512_bf16")
    assert recipe.resolved_precision == "bf16" and recipe.identity()["precision"] == "bf16"
    assert recipe.identity() != without                 # another precision: other weights, another adapter


# --- real runs --------------------------------------------------------------------------------
def _replies(result) -> dict:
    return {r["id"]: r["raw"] for r in map(json.loads, open(result.path / "predictions.jsonl"))}


@pytest.mark.slow
def test_bf16_replies_repeat_for_a_batch_size(data_dir, tmp_path):
    from harness.runs.runner import run

    results = [run("amazon8", f"hf:{SMOL}", prompt="base", eval_slice="0:6", data_dir=data_dir,
                   store=tmp_path / f"runs-{n}", options={"dtype": "bfloat16", "batch_size": 3}, progress=False)
               for n in (1, 2)]
    assert results[0].run_id == results[1].run_id
    assert results[0].manifest["identity"]["predictor"]["batch_size"] == 3
    assert _replies(results[0]) == _replies(results[1]) and len(_replies(results[0])) == 6


@pytest.mark.slow
def test_length_sorted_batches_give_the_replies_of_one_prompt_at_a_time(data_dir, task):
    from harness.prompts import build_requests

    predictor = make_predictor(ModelSpec(f"hf:{SMOL}", prompt="base", options={"batch_size": 4}))
    predictor.prepare(task)
    try:
        requests = build_requests(task, task.eval_items(), "base")
        batched = [(request.item.id, reply.raw) for request, reply in predictor.predict(requests)]
        alone = [(request.item.id, predictor._generate([predictor.render(request)], "base")[0].raw)
                 for request in requests]                                # item order, batch 1
    finally:
        predictor.close()
    assert [i for i, _ in batched] != [i for i, _ in alone]              # the batches really were reordered
    assert dict(batched) == dict(alone)


@pytest.mark.slow
def test_bf16_training_loss_stays_near_the_fp32_loss(tmp_path, data_dir):
    from harness.finetune.adapters import finetune
    from harness.finetune.recipe import load_recipe

    task = load_task("amazon8", data_dir=data_dir)
    losses = {}
    for precision in ("fp32", "bf16"):
        path = tmp_path / f"{precision}.yaml"
        path.write_text(f"name: tiny-{precision}\nbase: hf:{SMOL}\nmethod: lora\ntask: amazon8\n"
                        "data: {train: 8, validation: 0}\n"
                        "training: {learning_rate: 1.0e-3, schedule: constant, batch_size: 2, max_steps: 3, "
                        f"precision: {precision}, device: cpu, threads: 1}}\n")
        result = finetune(load_recipe(path), task, adapters=tmp_path / "adapters", progress=False)
        losses[precision] = [row["loss"] for row in result.manifest["training"]["curve"] if "loss" in row]
    assert len(losses["fp32"]) == len(losses["bf16"]) == 3
    for exact, half in zip(losses["fp32"], losses["bf16"]):
        assert abs(half - exact) <= 0.03 * exact, losses


def test_long_prompts_go_in_smaller_batches_only_where_replies_cannot_change(cpu_with):
    cpu_with("avx512f")
    lengths = [1200, 1190, 1100, 600, 590, 200, 199, 198, 197, 196]          # longest first, as predict sorts
    exact = make_predictor(ModelSpec(f"hf:{SMOL}", prompt="base", options={"batch_size": 8, "max_batch_tokens": 2400}))
    sizes = [len(b) for b in exact._batches(list(range(10)), lengths)]
    assert sizes == [2, 2, 4, 2]           # 2 x 1,200 and 2 x 1,100 padded tokens fit 2,400; 4 x 590; the rest
    off = make_predictor(ModelSpec(f"hf:{SMOL}", prompt="base", options={"batch_size": 8, "max_batch_tokens": 0}))
    assert [len(b) for b in off._batches(list(range(10)), lengths)] == [8, 2]
    cpu_with("amx_bf16")                     # bf16: the batch size is in the run id, so it is kept exactly
    half = make_predictor(ModelSpec(f"hf:{SMOL}", prompt="base", options={"batch_size": 8, "dtype": "fast"}))
    assert [len(b) for b in half._batches(list(range(10)), lengths)] == [8, 2]
