"""objective: regression, for real on CPU: SmolLM2-135M-Instruct with a scalar head on log(price).

A few steps on a few dozen amazon8 train items (prompts cut to 64 tokens to keep each training
to seconds; fp32, which a CPU without native bf16 runs several times faster: bf16 training is
checked against fp32 in test_fast_path.py); the adapter is then a model (`hf: -o adapter=`) that replies with a price.
"""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness.errors import InputError
from harness.predictors.hf.regression_head import REGRESSION_FILE, read_head, to_prices
from harness.predictors import ModelSpec, make_predictor
from harness.prompts import build_requests
from harness.runs.runner import run
from harness.tasks import load_task

pytest.importorskip("peft")
SMOL = "smollm2-135m-instruct"
LORA = {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


@pytest.fixture(scope="module")
def task(data_dir):
    return load_task("amazon8", data_dir=data_dir, eval_slice="0:8")


@pytest.fixture(scope="module")
def requests(task):
    """32 amazon8 train items (test items 250+, in-distribution), as the evaluator prompts them."""
    return build_requests(task, task.train_items()[-32:], "base")


def _train(out_dir, requests, *, learning_rate=2e-3, max_steps=16, callbacks=(), resume=False, save_every=None):
    from harness.finetune.regression import train_regression
    from harness.predictors.hf.testmodels import model_folder

    pairs = [(r.prompt, r.item.price) for r in requests]
    return train_regression(model_dir=model_folder(SMOL), train=pairs, validation=pairs[:8], out_dir=out_dir,
                            lora=LORA, learning_rate=learning_rate, schedule="constant", warmup_ratio=0.0,
                            epochs=None, max_steps=max_steps, batch_size=4, grad_accum=1, max_length=64, seed=0,
                            precision="fp32", eval_every=max_steps, save_every=save_every, resume=resume,
                            callbacks=list(callbacks))


def _log_errors(adapter, task, requests) -> np.ndarray:
    """Squared log errors of the adapter's prices on the requests, through the hf: predictor."""
    predictor = make_predictor(ModelSpec(f"hf:{SMOL}", options={"adapter": str(adapter)}))
    predictor.prepare(task)
    prices = {r.item.id: reply.price for r, reply in predictor.predict(requests)}
    assert all(math.isfinite(p) and p > 0 for p in prices.values())
    return np.array([(math.log(prices[r.item.id]) - math.log(r.item.price)) ** 2 for r in requests])


# --- cheap: the regression file ------------------------------------------------------------
@pytest.mark.parametrize("content, field", [
    ("{not json", None), ('{"objective": "causal"}', "objective"),
    ('{"objective": "regression", "mean": 4.0, "std": 0, "max_length": 64}', "std"),
    ('{"objective": "regression", "mean": 4.0, "std": 1.0, "max_length": "64"}', "max_length"),
    ('{"objective": "regression", "mean": 1e308, "std": 1.0, "max_length": 64}', "mean"),
    ('{"objective": "regression", "mean": NaN, "std": 1.0, "max_length": 64}', None),
])
def test_a_bad_regression_file_is_an_input_error_naming_it(tmp_path, content, field):
    (tmp_path / REGRESSION_FILE).write_text(content)
    with pytest.raises(InputError) as err:
        read_head(tmp_path)
    assert str(tmp_path / REGRESSION_FILE) in str(err.value)
    assert field is None or f"field '{field}'" in str(err.value)


def test_head_outputs_become_finite_positive_prices():
    head = {"mean": math.log(100.0), "std": 2.0, "max_length": 64}
    assert to_prices([0.0], head) == pytest.approx([100.0])
    assert all(math.isfinite(p) and p > 0 for p in to_prices([1e30, -1e30, 40.0], head))


def test_only_an_adapter_with_a_regression_file_makes_a_regressor(tmp_path):
    (tmp_path / "lm").mkdir()
    assert type(make_predictor(ModelSpec(f"hf:{SMOL}", options={"adapter": str(tmp_path / "lm")}))).__name__ \
        == "HFPredictor"
    head = {"objective": "regression", "mean": 4.0, "std": 1.0, "max_length": 64}
    (tmp_path / REGRESSION_FILE).write_text(json.dumps(head))
    predictor = make_predictor(ModelSpec(f"hf:{SMOL}", options={"adapter": str(tmp_path)}))
    assert type(predictor).__name__ == "HFRegressionPredictor" and predictor.prompt_style == "base"


def test_a_regression_adapter_of_other_base_weights_is_refused(tmp_path):
    head = {"objective": "regression", "mean": 4.0, "std": 1.0, "max_length": 64, "base_weights": "0123456789abcdef"}
    (tmp_path / REGRESSION_FILE).write_text(json.dumps(head))
    with pytest.raises(InputError, match="other base weights") as err:
        make_predictor(ModelSpec(f"hf:{SMOL}", options={"adapter": str(tmp_path)}))
    assert "field 'adapter'" in str(err.value)


# --- real training -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory, requests):
    """(untrained adapter: lr 0, so the seeded fresh head; trained adapter: 16 steps, 2 epochs)."""
    root = tmp_path_factory.mktemp("regression")
    _train(root / "untrained", requests, learning_rate=0.0, max_steps=1)
    summary = _train(root / "trained", requests)
    return root / "untrained", root / "trained", summary


@pytest.mark.slow
def test_training_lowers_the_loss_and_reports_its_run(trained, task, requests):
    untrained, adapter, summary = trained
    assert summary["steps"] == 16 and summary["examples_seen"] == 64 and summary["precision"] == "fp32"
    assert len(summary["train_loss"]) == 16 and summary["tokens_per_s"] > 0 and summary["peak_rss_mib"] > 0
    assert summary["validation_mae"] and summary["validation_mae"][-1]["mae"] > 0
    before, after = _log_errors(untrained, task, requests), _log_errors(adapter, task, requests)
    assert after.mean() < 0.8 * before.mean()
    head = read_head(adapter)
    prices = [r.item.price for r in requests]
    assert head["mean"] == pytest.approx(np.log(prices).mean()) and head["max_length"] == 64


@pytest.mark.slow
def test_adapter_is_a_model_whose_run_says_so(trained, data_dir, store):
    untrained, adapter, _ = trained
    tuned = run("amazon8", f"hf:{SMOL}", options={"adapter": str(adapter)}, eval_slice="0:8", data_dir=data_dir,
                store=store, progress=False)
    fresh = run("amazon8", f"hf:{SMOL}", options={"adapter": str(untrained)}, eval_slice="0:8", data_dir=data_dir,
                store=store, progress=False)
    assert tuned.run_id != fresh.run_id and tuned.manifest["kind"] == "open-finetuned"
    assert tuned.df["parsed"].all() and (tuned.df["price"] > 0).all()
    assert list(tuned.df["price"]) != list(fresh.df["price"])
    assert list(tuned.df["raw"]) == [f"{p:.2f}" for p in tuned.df["price"]]
    again = run("amazon8", f"hf:{SMOL}", options={"adapter": str(adapter), "batch_size": 3}, eval_slice="0:8",
                data_dir=data_dir, store=store, progress=False)
    assert again.run_id == tuned.run_id           # fp32 on the CPU: the batch size is speed only


@pytest.mark.slow
def test_a_crashed_training_resumes_from_its_last_checkpoint(tmp_path, requests):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "crashed", requests, max_steps=4, save_every=2, callbacks=[Crash()])
    checkpoint = tmp_path / "crashed" / "checkpoints" / "checkpoint-2"
    assert (checkpoint / REGRESSION_FILE).exists() and not (tmp_path / "crashed" / REGRESSION_FILE).exists()
    resumed = _train(tmp_path / "crashed", requests, max_steps=4, save_every=2, resume=True)
    assert resumed["resumed_from"] == str(checkpoint) and resumed["steps"] == 4
    whole = _train(tmp_path / "whole", requests, max_steps=4, save_every=2)
    a, b = (load_file(tmp_path / name / "adapter_model.safetensors") for name in ("crashed", "whole"))
    assert a.keys() == b.keys()
    for key in a:
        assert np.allclose(a[key].float().numpy(), b[key].float().numpy(), atol=1e-6), key


REGRESSION_RECIPE = """\
name: tiny-regression
base: hf:smollm2-135m-instruct
method: lora
objective: regression
task: amazon8
data: {train: "12890:", validation: 4}
lora: {r: 8, alpha: 16, dropout: 0.0, target_modules: [q_proj, v_proj]}
training: {learning_rate: 2.0e-3, schedule: constant, batch_size: 4, max_steps: 4, max_length: 64,
           save_every: 2, eval_every: 4, seed: 42, device: cpu, threads: 1}
"""


@pytest.mark.slow
def test_a_regression_recipe_trains_and_is_a_finetune_model(tmp_path, data_dir):
    """`objective: regression` end to end: `finetune()` trains the recipe (cached), and
    `finetune:<recipe>` evaluates its head, final or a checkpoint, as prices that need no parsing."""
    from harness.finetune.adapters import finetune
    from harness.finetune.recipe import load_recipe

    path = tmp_path / "tiny-regression.yaml"
    path.write_text(REGRESSION_RECIPE)
    adapters = tmp_path / "adapters"
    task = load_task("amazon8", data_dir=data_dir)
    trained = finetune(load_recipe(path), task, adapters=adapters, progress=False)
    assert read_head(trained.final) is not None and not trained.cached
    assert finetune(load_recipe(path), task, adapters=adapters, progress=False).cached

    common = {"eval_slice": "0:4", "data_dir": data_dir, "store": tmp_path / "runs", "progress": False}
    final = run("amazon8", f"finetune:{path}", options={"adapters": str(adapters)}, **common)
    assert final.manifest["kind"] == "open-finetuned" and "regression head" in final.manifest["label"]
    assert final.df["parsed"].all() and (final.df["guess"] > 0).all()
    assert final.manifest["identity"]["predictor"]["finetune"]["adapter_id"] == trained.adapter_id
    record = final.manifest["info"]["training"]            # what the report draws: loss per step, MAE at step 4
    assert record["objective"] == "regression" and record["adapter_id"] == trained.adapter_id
    assert [r["step"] for r in record["curve"] if "loss" in r] == [1, 2, 3, 4]
    assert [r["step"] for r in record["curve"] if "eval_mae" in r] == [4]
    by_hf = run("amazon8", f"hf:{SMOL}", options={"adapter": str(trained.final)}, **common)
    assert list(by_hf.df["guess"]) == list(final.df["guess"])          # the same head, found by the recipe
    early = run("amazon8", f"finetune:{path}", options={"adapters": str(adapters), "checkpoint": 2}, **common)
    assert early.run_id != final.run_id and early.df["parsed"].all()
    assert early.manifest["info"]["training"]["checkpoint"] == 2
    assert list(early.df["guess"]) != list(final.df["guess"])          # 2 more steps moved the head
