"""The 2025 edition as a task: the human's published $87.62, the edition's metrics (MSE, R2,
normal 95% CI) and prompts (the Llama prompt's tokenizer cut), and the report's R2 column."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import harness
from harness.data import read_items
from harness.errors import InputError
from harness.prompts import build_requests
from harness.scoring import mse, normal_ci, r2
from harness.tasks import load_task
from tests._hostile import assert_one_line_error, cli


def test_reference_human_reproduces_the_published_mae(capsys, data_dir, store):
    code, out, err = cli(capsys, "run", "--task", "amazon25", "--model", "reference:human", "--data-dir", data_dir,
                         "--store", store)
    assert code == 0, err
    assert "MAE $87.62" in out and "R² " in out and "RMSLE" not in out     # the course's published figure
    result = harness.run("amazon25", "reference:human", data_dir=data_dir, store=store)
    assert result.cached and result.metrics["n"] == 100
    assert result.df["raw"].iloc[0] == "120"                                # his typed answer, replayed


def test_edition_metrics_match_numpy_and_sklearn_on_the_human_run(data_dir):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    truth = np.array([i.price for i in read_items(data_dir / "amazon25" / "test.jsonl")])
    record = json.loads((data_dir / "amazon25" / "references.jsonl").read_text().splitlines()[0])
    guess = np.array(record["predictions"])
    assert mse(guess, truth) == pytest.approx(sklearn_metrics.mean_squared_error(truth, guess))
    assert r2(guess, truth) == pytest.approx(sklearn_metrics.r2_score(truth, guess))
    errors = np.abs(guess - truth)
    low, high = normal_ci(errors)
    half = 1.96 * pd.Series(errors).std() / np.sqrt(len(errors))
    assert (low, high) == pytest.approx((errors.mean() - half, errors.mean() + half))
    assert np.isnan(r2([1.0, 2.0], [5.0, 5.0]))


def test_raw_answers_must_parse_to_the_predictions(tmp_path, data_dir):
    lines = (data_dir / "amazon25" / "references.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["raw"][3] = "about $99"
    (tmp_path / "amazon25").mkdir()
    (tmp_path / "amazon25" / "references.jsonl").write_text(json.dumps(record) + "\n")
    (tmp_path / "amazon25" / "test.jsonl").write_text((data_dir / "amazon25" / "test.jsonl").read_text())
    with pytest.raises(InputError) as err:
        harness.run("amazon25", "reference:human", data_dir=tmp_path, store=tmp_path / "runs")
    assert (err.value.line, err.value.field) == (1, "raw") and "amazon25-0003" in str(err.value)


def test_metrics_key_is_strict_and_only_amazon25_adds_it_to_the_identity(tmp_path, data_dir):
    assert "metrics" not in load_task("amazon8", data_dir=data_dir).identity()
    assert load_task("amazon25", data_dir=data_dir).identity()["metrics"] == ["mae", "mse", "r2"]
    spec = (load_task("amazon25").spec.path.read_text()).replace("metrics: [mae, mse, r2]", "metrics: [mae, mse, hitrate]")
    (tmp_path / "bad.yaml").write_text(spec)
    with pytest.raises(InputError) as err:
        load_task(tmp_path / "bad.yaml", data_dir=data_dir)
    assert err.value.field == "metrics.2" and "did you mean" in str(err.value) and err.value.line


def test_published_rows_say_how_many_items_they_were_measured_on(data_dir):
    rows = load_task("amazon25", data_dir=data_dir).published
    assert {r["run"]: r["n"] for r in rows}["human"] == 100
    assert all(r["n"] == 200 for r in rows if r["run"] != "human")
    assert all(f"{r['n']} items" in r["label"] for r in rows)


def _task_with_tokenizer(tmp_path, tokenizer: str):
    spec = load_task("amazon25").spec.path.read_text().replace("meta-llama/Llama-3.2-3B", tokenizer)
    (tmp_path / "a25.yaml").write_text(spec)
    return tmp_path / "a25.yaml"


def test_base_prompt_cuts_the_summary_to_110_tokens_of_the_named_tokenizer(tmp_path, data_dir):
    testmodels = pytest.importorskip("harness.predictors.hf.testmodels")
    transformers = pytest.importorskip("transformers")
    try:
        folder = testmodels.model_folder("smollm2-135m-instruct")
    except Exception as e:  # noqa: BLE001 - the cached test model is not here: nothing to test with
        pytest.skip(f"test model not cached: {e}")
    task = load_task(_task_with_tokenizer(tmp_path, str(folder)), data_dir=data_dir)
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    items = task.eval_items()
    base = build_requests(task, items, "base")
    cut = [r.prompt.split("\n\n", 1)[1].rsplit("\n\nPrice is $", 1)[0] for r in base]
    lengths = [len(tok.encode(i.text, add_special_tokens=False)) for i in items]
    assert any(n > 110 for n in lengths)
    for item, text, n in zip(items, cut, lengths):
        assert (text == item.text) if n <= 110 else (item.text.startswith(text) or len(text) < len(item.text))
        assert len(tok.encode(text, add_special_tokens=False)) <= 111
    chat = build_requests(task, items, "chat")
    assert [m["role"] for m in chat[0].messages] == ["user"] and items[0].text in chat[0].messages[0]["content"]
    assert base[0].item.text == items[0].text                     # scoring still sees the whole item


def test_unavailable_tokenizer_is_one_error_naming_the_field(tmp_path, data_dir, monkeypatch, capsys):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = _task_with_tokenizer(tmp_path, str(tmp_path / "no-such-tokenizer"))
    code, _, err = cli(capsys, "run", "--task", path, "--model", "hf:smollm2-135m-instruct", "--prompt", "base",
                       "--data-dir", data_dir, "--store", tmp_path / "runs")
    assert_one_line_error(code, err, "prompts.truncate.tokenizer", "no-such-tokenizer")


def test_report_shows_r2_for_amazon25_only(tmp_path, data_dir, store):
    from harness.report import report_for_store

    harness.run("amazon25", "reference:human", data_dir=data_dir, store=store)
    harness.run("amazon8", "reference:human", data_dir=data_dir, store=store)
    index = report_for_store(store=store, out_dir=tmp_path / "report")
    table = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    a25, a8 = (table[table["task"] == t].iloc[0] for t in ("amazon25", "amazon8"))
    assert a25["mae"] == pytest.approx(87.62, abs=0.005) and -1 < a25["r2"] < 1 and a25["mse"] > 0
    assert np.isnan(a8["r2"]) and np.isnan(a8["mse"])
    html = (index.parent / "tasks" / "amazon25.html").read_text(encoding="utf-8")
    assert "R²" in html and "R²" not in (index.parent / "tasks" / "amazon8.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_transformers_model_runs_on_amazon25_with_the_frontier_prompt(data_dir, store):
    pytest.importorskip("torch")
    result = harness.run("amazon25", "hf:smollm2-135m-instruct", prompt="chat", eval_slice="0:6",
                         options={"batch_size": 6}, data_dir=data_dir, store=store)
    assert result.metrics["n"] == 6 and "r2" in result.metrics and result.metrics["mse"] > 0
    assert result.df["raw"].notna().all() and not result.df["failure"].notna().any()
    stored = json.loads((result.path / "manifest.json").read_text())
    assert stored["prompt_style"] == "chat" and "train_excluded" not in stored      # it never trained
    assert "R² " in result.summary()


@pytest.mark.parametrize("old, new, field", [
    ("truncate: {tokens: 110,", "truncate: {tokens: 0,", "prompts.truncate.tokens"),
    ("truncate: {tokens: 110,", "truncate: {tokenz: 110,", "prompts.truncate.tokenz"),
    ("text_field: summary", "text_field: 5", "source.hub.text_field"),
    ("metrics: [mae, mse, r2]", "metrics: [mse, r2]", "metrics"),
    ("n: 100, mae: 87.62}", "n: 100, mae: 87.62, r2: 3}", "published.5.r2"),
])
def test_new_task_keys_are_checked_with_file_line_and_field(tmp_path, data_dir, old, new, field):
    text = load_task("amazon25").spec.path.read_text()
    assert old in text
    (tmp_path / "bad.yaml").write_text(text.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_task(tmp_path / "bad.yaml", data_dir=data_dir)
    assert err.value.field == field and err.value.line and err.value.path == tmp_path / "bad.yaml"


def test_hub_source_reads_the_summary_field(tmp_path, data_dir, monkeypatch):
    """`ed-donner/items_full` laid out locally: the `summary` column is the text, `title` the title."""
    items = read_items(data_dir / "amazon25" / "test.jsonl")
    pool = read_items(data_dir / "pool" / "train.jsonl")[:50]
    repo = tmp_path / "items_full"
    (repo / "data").mkdir(parents=True)
    for split, rows in (("test", items), ("train", pool)):
        pd.DataFrame({"title": [i.title for i in rows], "summary": [i.text for i in rows],
                      "category": [i.category for i in rows], "price": [i.price for i in rows]}
                     ).to_parquet(repo / "data" / f"{split}-00000-of-00001.parquet")
    spec = load_task("amazon25").spec.path.read_text().replace("ed-donner/items_full", str(repo))
    (tmp_path / "a25-hub.yaml").write_text(spec)
    monkeypatch.delenv("PRICEBENCH_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    task = load_task(tmp_path / "a25-hub.yaml")
    loaded = task.eval_items()
    assert not task.is_local and len(loaded) == 100
    assert [(i.id, i.title, i.text, i.price) for i in loaded] == [(i.id, i.title, i.text, i.price) for i in items]
    assert task.eval_hash == load_task("amazon25", data_dir=data_dir).eval_hash
    assert [i.text for i in task.train_items()] == [i.text for i in pool]


def test_published_rows_without_per_item_data_run_as_published_figures(data_dir, store):
    result = harness.run("amazon25", "reference:gpt-5.1", data_dir=data_dir, store=store)
    assert result.published and result.metrics["mae"] == 44.74 and result.metrics["n"] == 200
    with pytest.raises(InputError):
        harness.run("amazon25", "reference:gpt-5.2", data_dir=data_dir, store=store)
