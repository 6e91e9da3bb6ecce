"""Acceptance: the 16 recorded course runs (and the appliances one) reproduce the course's table."""
from __future__ import annotations

import re

import pytest

from harness.cli import main

# shared/data/README.md: run -> (mean absolute error, RMSLE, hit rate %), printed by the course.
COURSE_TABLE = {
    "random": (340.74, 1.72, 11.6), "constant-mean": (145.51, 1.22, 16.8),
    "features-linreg": (139.34, 1.17, 15.6), "human": (126.55, 1.00, 32.0),
    "word2vec-linreg": (115.71, 1.05, 24.8), "bow-linreg": (113.60, 0.99, 24.8),
    "word2vec-random-forest": (112.32, 0.98, 24.8), "word2vec-svr": (110.60, 0.94, 28.8),
    "claude-3-5-sonnet": (100.83, 0.60, 50.8), "gpt-4o-mini-ft": (91.45, 0.68, 44.0),
    "gpt-4o-mini": (79.58, 0.59, 52.0), "gpt-4o-2024-08-06": (75.92, 0.75, 58.0),
    "ensemble": (50.90, 0.49, 68.4), "gpt-4o-mini-rag": (48.52, 0.41, 70.4),
    "llama-3.1-8b-qlora": (46.66, 0.38, 70.8), "llama-3.1-8b-base-4bit": (395.72, 1.49, 28.0),
}
SUMMARY = re.compile(r"MAE \$([\d,.]+).*RMSLE ([\d.]+)\s+Hits ([\d.]+)%")


def _cli_run(capsys, data_dir, store, task, model):
    code = main(["--data-dir", str(data_dir), "--store", str(store), "run", "--task", task, "--model", model])
    out = capsys.readouterr().out
    assert code == 0, out
    mae, rmsle, hits = SUMMARY.search(out).groups()
    return float(mae.replace(",", "")), float(rmsle), float(hits), out


def test_all_sixteen_recorded_runs_reproduce_the_course_table(capsys, data_dir, store):
    for run_name, expected in COURSE_TABLE.items():
        mae, rmsle, hits, out = _cli_run(capsys, data_dir, store, "amazon8", f"reference:{run_name}")
        assert (mae, rmsle, hits) == expected, f"{run_name}: {out}"


def test_appliances_reference_reproduces_the_lite_figures(capsys, data_dir, store):
    mae, rmsle, hits, _ = _cli_run(capsys, data_dir, store, "appliances", "reference:llama-3.1-8b-qlora-appliances")
    assert (mae, rmsle, hits) == (20.03, 0.44, 89.6)


def test_human_ci_is_about_the_designed_interval(data_dir, store):
    import harness

    m = harness.run("amazon8", "reference:human", data_dir=data_dir, store=store).metrics
    assert 105 < m["mae_ci_low"] < 115 and 140 < m["mae_ci_high"] < 150
    assert m["mae_ci_low"] < m["mae"] < m["mae_ci_high"]


def test_reference_outside_its_recorded_items_is_refused(data_dir, store):
    import harness

    with pytest.raises(harness.InputError, match="no prediction for amazon8-0250"):
        harness.run("amazon8", "reference:human", eval_slice="all", data_dir=data_dir, store=store)
    assert not store.exists() or not any(store.glob("*/metrics.json"))


def test_published_rows_match_the_recorded_runs(data_dir):
    """The task spec's published table (for hub users) agrees with the per-item files."""
    from harness.predictors.reference import read_references
    from harness.tasks import load_task

    task = load_task("amazon8", data_dir=data_dir)
    recorded = read_references(task.references_path)
    published = {row["run"]: row for row in task.published}
    assert set(published) == set(recorded) == set(COURSE_TABLE)
    for name, row in published.items():
        assert (row["mae"], row["rmsle"], row["hit_rate"]) == COURSE_TABLE[name]
        assert row["mae"] == recorded[name]["reported_mae"]
