"""Numeric decoding (`-o decoding=median|mean|expected`): the decisions, how they are stored, what
enters the run id, and (slow) real SmolLM2 runs that are deterministic per seed."""
from __future__ import annotations

import importlib.util
import json
import math

import pandas as pd
import pytest

from harness.data import Item
from harness.errors import InputError
from harness.predictors import ModelSpec, make_predictor
from harness.predictors.hf.expected import _reply, state
from harness.predictors.numeric import decide, recompute, sampled_reply, samples_of
from harness.prompts import Request
from harness.runs.runner import make_record, run, run_identity
from harness.tasks import load_task

SMOL = "smollm2-135m-instruct"
ITEM = Item("x-1", "t", "text", None, None, 50.0)


# --- the decisions (fast) --------------------------------------------------------------------
def test_median_and_mean_leave_out_samples_with_no_number():
    values = [12.0, None, 14.0, 100.0, None]
    assert decide(values, "median") == 14.0
    assert decide(values, "mean") == pytest.approx(42.0)
    assert decide([1.0, 3.0], "median") == 2.0          # an even count: the middle two's mean
    assert decide([None, None], "median") is None and decide([], "mean") is None
    with pytest.raises(ValueError):
        decide([1.0], "mode")


def test_a_sampled_reply_lists_its_samples_and_its_decision_can_be_recomputed():
    texts = ["$12.50 each", "no idea", "14\n", "1,299 | 3", "about 20"]
    reply = sampled_reply(texts, "median")
    assert reply.raw.startswith("median of 5 samples: ") and samples_of(reply.raw) == texts
    assert reply.price == 17.0 == recompute(reply.raw)            # median of 12.5, 14, 20, 1299
    record = make_record(Request(ITEM, "base", prompt="p"), reply)
    assert record["price"] == 17.0 and record["parsed"] is True and record["error"] == 33.0
    mean = sampled_reply(texts, "mean")
    assert mean.price == pytest.approx((12.5 + 14 + 1299 + 20) / 4) == recompute(mean.raw)


def test_no_sample_with_a_number_is_a_parse_failure_even_if_the_raw_text_holds_digits():
    reply = sampled_reply(["no idea", "cheap"], "median")      # the header says "of 2": not a price
    assert math.isnan(reply.price) and recompute(reply.raw) is None
    record = make_record(Request(ITEM, "base", prompt="p"), reply)
    assert record["parsed"] is False and record["guess"] == 0.0 and record["price"] is None


def test_expected_value_weights_the_numbers_that_ended():
    assert state("") == state(" $") == "start" and state("12") == "int" and state("12.") == "frac"
    reply = _reply({10.0: 0.3, 20.0: 0.1}, prompt_tokens=5, steps=3)
    assert reply.price == pytest.approx(12.5) and "0.400 of the probability" in reply.raw
    assert math.isnan(_reply({}, 5, 3).price)


# --- options and run ids (cheap: nothing is loaded) ----------------------------------------------
@pytest.fixture(scope="module")
def task(data_dir):
    return load_task("amazon8", data_dir=data_dir, eval_slice="0:2")


def _id(task, **options) -> str:
    predictor = make_predictor(ModelSpec(f"hf:{SMOL}", prompt="base", options={"dtype": "float32", **options}))
    return run_identity(task, predictor.spec, predictor)[1]


@pytest.fixture(scope="module")
def cached():
    if importlib.util.find_spec("transformers") is None:
        pytest.skip("transformers is not installed")
    from harness.cache import cache_root

    if not (cache_root() / "models" / SMOL / "config.json").exists():
        pytest.skip(f"test model {SMOL} is not cached (python -m harness.predictors.hf.testmodels)")


def test_each_decoding_and_each_sampling_setting_is_its_own_run(task, cached):
    ids = {name: _id(task, **options) for name, options in {
        "greedy": {}, "median": {"decoding": "median"}, "mean": {"decoding": "mean"},
        "expected": {"decoding": "expected"}, "seed": {"decoding": "median", "seed": 1},
        "samples": {"decoding": "median", "samples": 4}, "temperature": {"decoding": "median", "temperature": 0.7},
        "beam": {"decoding": "expected", "beam": 4}}.items()}
    assert len(set(ids.values())) == len(ids)
    assert _id(task, decoding="median", seed=1) == ids["seed"]      # and the same settings: the same run
    predictor = make_predictor(ModelSpec(f"hf:{SMOL}", options={"decoding": "median"}))
    assert {"samples": 8, "temperature": 1.0, "seed": 0}.items() <= predictor.identity(task).items()


@pytest.mark.parametrize("options, name", [({"samples": 4}, "samples"), ({"seed": 3}, "seed"),
                                           ({"decoding": "topk-weighted", "temperature": 0.5}, "temperature"),
                                           ({"decoding": "median", "beam": 4}, "beam"),
                                           ({"decoding": "median", "samples": 0}, "samples")])
def test_decoding_settings_without_their_decoding_are_refused(options, name, cached):
    with pytest.raises(InputError) as error:
        make_predictor(ModelSpec(f"hf:{SMOL}", options=options))
    assert error.value.field == name


# --- real SmolLM2 (slow) ------------------------------------------------------------------------
@pytest.mark.slow
def test_median_of_samples_is_seeded_and_its_price_is_the_median_of_the_stored_samples(data_dir, tmp_path):
    def median_run(store, seed=0, batch_size=2):
        return run("amazon8", f"hf:{SMOL}", prompt="base", eval_slice="0:2", data_dir=data_dir, store=store,
                   options={"dtype": "float32", "decoding": "median", "samples": 4, "seed": seed,
                            "batch_size": batch_size}, progress=False)

    first, again = median_run(tmp_path / "a"), median_run(tmp_path / "b", batch_size=1)
    assert first.run_id == again.run_id and list(first.df["raw"]) == list(again.df["raw"])
    for raw, price in zip(first.df["raw"], first.df["price"]):
        assert len(samples_of(raw)) == 4
        decision = recompute(raw)
        assert pd.isna(price) if decision is None else price == decision
    other = median_run(tmp_path / "a", seed=1)
    assert other.run_id != first.run_id and list(other.df["raw"]) != list(first.df["raw"])


@pytest.mark.slow
def test_expected_decoding_is_deterministic_and_a_weighted_mean_of_numbers(data_dir, tmp_path):
    runs = [run("amazon8", f"hf:{SMOL}", prompt="base", eval_slice="0:2", data_dir=data_dir, store=tmp_path / s,
                options={"dtype": "float32", "decoding": "expected", "beam": 4, "max_new_tokens": 4},
                progress=False) for s in "ab"]
    assert list(runs[0].df["raw"]) == list(runs[1].df["raw"])
    for raw, price in zip(runs[0].df["raw"], runs[0].df["price"]):
        pairs = json.loads(raw.split(": ", 1)[1])
        assert pairs and min(v for v, _ in pairs) <= price <= max(v for v, _ in pairs)
        assert price == pytest.approx(sum(v * w for v, w in pairs) / sum(w for _, w in pairs), rel=1e-3)
