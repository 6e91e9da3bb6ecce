"""The hub path, tested without the hub: local folders laid out like the hub's dataset repos.

`ed-donner/pricer-data` has splits train/test with columns text (the whole course prompt)
and price. We write the real course items in that format and load them through the same
`datasets.load_dataset` call a real user's run makes.
"""
from __future__ import annotations

import pandas as pd
import pytest

import harness
from harness.data import BASE_QUESTION, read_items
from harness.tasks import TASKS_DIR, load_task


@pytest.fixture
def hub_copy(tmp_path, data_dir, monkeypatch):
    test = read_items(data_dir / "amazon8" / "test.jsonl")
    pool = read_items(data_dir / "pool" / "train.jsonl")[:300]
    repo = tmp_path / "pricer-data"
    (repo / "data").mkdir(parents=True)
    pd.DataFrame({"text": [f"{BASE_QUESTION}{i.text}\n\nPrice is $" for i in test],
                  "price": [i.price for i in test]}).to_parquet(repo / "data" / "test-00000-of-00001.parquet")
    pd.DataFrame({"text": [f"{BASE_QUESTION}{i.text}\n\nPrice is ${round(i.price)}.00" for i in pool],
                  "price": [i.price for i in pool]}).to_parquet(repo / "data" / "train-00000-of-00001.parquet")
    spec = (TASKS_DIR / "amazon8.yaml").read_text().replace("ed-donner/pricer-data", str(repo))
    task_file = tmp_path / "amazon8-hub.yaml"
    task_file.write_text(spec)
    monkeypatch.delenv("PRICEBENCH_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    return task_file, test, pool


def test_hub_items_equal_the_offline_items(hub_copy):
    task_file, test, pool = hub_copy
    task = load_task(task_file)
    assert not task.is_local and task.references_path is None
    loaded = task.eval_items()
    assert [i.id for i in loaded] == [i.id for i in test[:250]]
    assert [i.text for i in loaded] == [i.text for i in test[:250]]
    assert [i.price for i in loaded] == [i.price for i in test[:250]]
    train = task.train_items()
    # content duplicates of evaluation items are left out (the leakage guard), and counted
    excluded = {e["id"] for e in task.train_excluded}
    assert len(train) + len(excluded) == 300 + 1750 and not excluded & {i.id for i in train}
    kept = [i for i in test[250:] if f"amazon8-{int(i.id.split('-')[1]):04d}" not in excluded]
    assert [i.text for i in train[-len(kept):]] == [i.text for i in kept]
    assert train[0].text == pool[0].text            # the 'Price is $NN.00' answer is stripped


def test_hub_user_gets_published_reference_rows(hub_copy, tmp_path):
    task_file, _, _ = hub_copy
    result = harness.run(task_file, "reference:human", store=tmp_path / "runs")
    assert result.published and result.path is None
    assert (round(result.metrics["mae"], 2), result.metrics["rmsle"], result.metrics["hit_rate"]) == (126.55, 1.0, 32.0)
    assert "published" in result.summary() or result.manifest["provenance"] == "published"
    assert not (tmp_path / "runs").exists()


def test_hub_run_scores_against_hub_prices(hub_copy, tmp_path, data_dir):
    """A per-item run on hub data gives the same metrics as on the offline copy."""
    from tests.test_store import CountingPredictor
    from harness.predictors import register_backend

    register_backend("counting", CountingPredictor)
    task_file, _, _ = hub_copy
    hub = harness.run(task_file, "counting:t", store=tmp_path / "a", eval_slice="0:40")
    local = harness.run("amazon8", "counting:t", store=tmp_path / "b", eval_slice="0:40", data_dir=data_dir)
    # titles differ (the hub has none; we take the first line of the text), so guesses may too:
    assert hub.df["truth"].tolist() == local.df["truth"].tolist()
    assert hub.metrics["n"] == 40 and hub.manifest["data_source"] == "hub"
