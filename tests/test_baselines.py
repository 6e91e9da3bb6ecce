"""`baseline:<name>` predictors: they run through the harness, are stored like any run, learn,
and a second run loads from the caches (run store and fitted models) instead of refitting.

Learning is checked on the real amazon8 split (train: pool + test items 250-1999; eval: the
course's items 0-249, never trained on): a slow test, since it fits every model once (a few
minutes on 2 cores). The caching and CLI tests use a small task (train: amazon8 test items
250-1999 only) to stay fast.
"""
from __future__ import annotations

import json

import pytest
import yaml

import harness
from harness import cli
from harness.errors import InputError
from harness.predictors.baselines.features import item_features, parse_rank, parse_weight
from harness.predictors.baselines.fitted_cache import cache_dir
from harness.predictors.baselines import predictor as baselines
from harness.predictors.baselines.recipes import RECIPES
from harness.data import Item
from harness.tasks import TASKS_DIR

LEARNED = sorted(set(RECIPES) - {"constant-mean"})


@pytest.fixture(scope="module", autouse=True)
def fitted_cache(baseline_fit_cache):
    """The session's fitted-model cache, not the user's (each model fits once; test_eee_export
    reuses the fits)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRICEBENCH_CACHE", str(baseline_fit_cache))
        yield baseline_fit_cache


def small_task_file(folder, data_dir, train_slice="250:2000") -> str:
    spec = yaml.safe_load((TASKS_DIR / "amazon8.yaml").read_text())
    spec["name"] = "amazon8-small"
    spec["source"] = {"local": {"test": "amazon8/test.jsonl",
                                "train": [{"file": "amazon8/test.jsonl", "slice": train_slice}]}}
    spec.pop("published", None)
    path = folder / f"amazon8-small-{train_slice.replace(':', '-')}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


@pytest.fixture(scope="module")
def small_task(tmp_path_factory, data_dir):
    return small_task_file(tmp_path_factory.mktemp("tasks"), data_dir)


@pytest.fixture(scope="module")
def module_store(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def constant_mae(data_dir, module_store):
    return harness.run("amazon8", "baseline:constant-mean", data_dir=data_dir, store=module_store,
                       progress=False).metrics["mae"]


def test_random_reproduces_the_course_run(data_dir, store):
    result = harness.run("amazon8", "baseline:random", data_dir=data_dir, store=store, progress=False)
    refs = {json.loads(line)["run"]: json.loads(line)
            for line in (data_dir / "amazon8" / "references.jsonl").read_text().splitlines()}
    assert result.df["price"].tolist() == refs["random"]["predictions"]
    assert round(result.metrics["mae"], 2) == refs["random"]["reported_mae"]


@pytest.mark.slow
@pytest.mark.parametrize("name", LEARNED)
def test_baseline_learns_and_is_stored(name, data_dir, module_store, constant_mae):
    result = harness.run("amazon8", f"baseline:{name}", data_dir=data_dir, store=module_store, progress=False)
    assert (result.path / "metrics.json").exists() and (result.path / "predictions.jsonl").exists()
    assert result.manifest["kind"] == "baseline" and result.metrics["n"] == 250
    assert result.metrics["parse_failures"] == 0 and (result.df["guess"] >= 0).all()
    assert result.metrics["mae"] < constant_mae, f"{name} does not beat the training mean on held-out items"


def test_second_run_loads_instead_of_refitting(small_task, data_dir, tmp_path, monkeypatch):
    first = harness.run(small_task, "baseline:bow-linreg", data_dir=data_dir, store=tmp_path / "a", progress=False)
    again = harness.run(small_task, "baseline:bow-linreg", data_dir=data_dir, store=tmp_path / "a", progress=False)
    assert again.cached and again.computed == 0 and again.run_id == first.run_id

    def no_refit(*args, **kwargs):
        raise AssertionError("refitted although the fitted model is cached")

    monkeypatch.setattr(baselines, "fit_with_progress", no_refit)
    files = sorted(cache_dir().iterdir())
    fresh = harness.run(small_task, "baseline:bow-linreg", data_dir=data_dir, store=tmp_path / "b", progress=False)
    assert not fresh.cached and fresh.computed == 250
    assert fresh.manifest["info"]["fitted_from_cache"] is True
    assert sorted(cache_dir().iterdir()) == files
    assert fresh.df["price"].tolist() == first.df["price"].tolist()


def test_word2vec_models_share_one_trained_vector_set(small_task, data_dir, module_store, tmp_path, monkeypatch):
    monkeypatch.setenv("PRICEBENCH_CACHE", str(tmp_path))
    for name in ("word2vec-linreg", "word2vec-svr"):
        harness.run(small_task, f"baseline:{name}", data_dir=data_dir, store=module_store, progress=False)
    vectors = list(cache_dir().glob("word2vec-vectors-*.joblib"))
    assert len(vectors) == 1


def test_changed_train_data_changes_run_and_fit(tmp_path, data_dir):
    a = harness.run(small_task_file(tmp_path, data_dir, "250:1000"), "baseline:constant-mean", data_dir=data_dir,
                    store=tmp_path / "runs", progress=False)
    b = harness.run(small_task_file(tmp_path, data_dir, "1000:2000"), "baseline:constant-mean", data_dir=data_dir,
                    store=tmp_path / "runs", progress=False)
    assert a.run_id != b.run_id
    assert a.manifest["identity"]["predictor"]["train_hash"] != b.manifest["identity"]["predictor"]["train_hash"]
    assert a.df["price"].iloc[0] != b.df["price"].iloc[0]


def test_cli_runs_a_baseline_and_then_reuses_it(small_task, data_dir, tmp_path, capsys):
    argv = ["--data-dir", str(data_dir), "--store", str(tmp_path), "run", "--task", small_task,
            "--model", "baseline:features-linreg", "--json"]
    assert cli.main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert cli.main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    assert not first["cached"] and second["cached"] and first["run_id"] == second["run_id"]


def test_unknown_baseline_is_a_clear_error(data_dir, store):
    with pytest.raises(InputError, match="unknown baseline 'nope'.*bow-linreg"):
        harness.run("amazon8", "baseline:nope", data_dir=data_dir, store=store)


@pytest.mark.parametrize("text, pounds", [
    ("19.3 pounds", 19.3), ("8 Ounces", 0.5), ("1,000 grams", 1000 / 453.592), ("2 Kilograms", 2 / 0.453592),
    ("50 hundredths pounds", 0.5), ("4.4 lbs", 4.4), ("", None), ("heavy", None), ("3 furlongs", None),
    (None, None), (12, None), ("..5 pounds", None)])
def test_weight_parsing_never_crashes(text, pounds):
    assert parse_weight(text) == (pytest.approx(pounds) if pounds is not None else None)


@pytest.mark.parametrize("value, rank", [({"A": 10, "B": 30}, 20), ({}, None), ({"A": "x"}, None),
                                         ("#1,234 in Tools (See Top 100)", 1234), ("#10 in A, #30 in B", 20), (None, None), (True, None)])
def test_rank_parsing_never_crashes(value, rank):
    assert parse_rank(value) == (pytest.approx(rank) if rank is not None else None)


@pytest.mark.parametrize("details", [None, "", "not json", "[1, 2]", '{"Item Weight": 5, "Brand": 7}',
                                     '{"Item Weight": "2 pounds", "Brand": " Sony ", "Best Sellers Rank": {"X": 5}}'])
def test_item_features_from_odd_details(details):
    item = Item(id="x", title="t", text="some text", details=details, category=None, price=1.0)
    weight, rank, length, brand = item_features(item)
    assert length == len("some text") and brand in (0.0, 1.0)
    if details and "Sony" in details:
        assert (weight, rank, brand) == (2.0, 5.0, 1.0)
