"""One metric schema (harness.scoring.METRICS): every consumer shows only its metrics, under its
labels, tooltips, directions and formats: the report's tables and cards, leaderboard.csv, the CLI
summary, the lm-eval export and the task YAML's `metrics:`."""
from __future__ import annotations

import html
import importlib.util
import json
import re

import pandas as pd
import pytest

from harness import cli
from harness.report import report_for_leaderboard
from harness.report.collect import displayed_fields, entry_from_result
from harness.runs.results import published_result, records_frame, run_metrics
from harness.scoring import FORMATS, HEADLINE_METRICS, METRIC_BY_KEY, METRICS, Metric
from harness.suite import load_leaderboard, run_suite
from tests._docs import DOCS, markdown_table
from tests._suite_support import register, write_leaderboard

ATTR = re.compile(r'([\w-]+)="([^"]*)"')
CI_KEYS = {key for m in METRICS for key in (m.ci or ())}


@pytest.fixture(scope="module")
def report(tmp_path_factory, data_dir):
    """Recorded runs on amazon8 and amazon25 (MSE, R² columns) and a measured model with two prompts
    (cost, items/s, a comparison), reported."""
    register()
    tmp = tmp_path_factory.mktemp("schema")
    board = load_leaderboard(write_leaderboard(tmp / "board.yaml", """
name: schema
tasks: [amazon8, amazon25]
references: {amazon8: [human, gpt-4o-mini], amazon25: [human]}
models:
  - {model: "testonly:steady", prompt: [base, chat], tasks: [amazon8]}
"""))
    assert not run_suite(board, data_dir=data_dir, store=tmp / "runs", echo=lambda _: None).failures
    return report_for_leaderboard(board, out_dir=tmp / "out", data_dir=data_dir, store=tmp / "runs").parent, tmp


IDENTITY_COLUMNS = {"task", "rank", "label", "model", "kind", "provenance", "quant", "prompt", "run_id", "mixed", "n",
                    "same_as_above"}


def _cells(text: str, tag: str, css: str) -> list[tuple[dict, str]]:
    """(attributes, inner text) of each <tag class="... css ..."> (a card's first inner <div>'s end)."""
    found = re.findall(rf"<{tag}\b([^>]*)>(.*?)</{tag}>", text, re.S)
    return [(dict(ATTR.findall(attrs)), body) for attrs, body in found
            if css in dict(ATTR.findall(attrs)).get("class", "").split()]


def _check_header(attrs: dict, text: str) -> str:
    """A metric's header or card: a key of the table, its label and its tooltip with the direction."""
    key = attrs.get("data-metric")
    assert key in METRIC_BY_KEY, f"a column or card shows {text!r}, a metric not in scoring.METRICS"
    metric = METRIC_BY_KEY[key]
    assert html.unescape(re.sub(r"<[^>]+>", "", text)).strip() == metric.label
    if "title" in attrs:
        assert html.unescape(attrs["title"]) == metric.tooltip and metric.better in metric.tooltip
    return key


def test_the_table_is_well_formed():
    assert len(METRIC_BY_KEY) == len(METRICS) and all(isinstance(m, Metric) for m in METRICS)
    assert {m.format for m in METRICS} <= set(FORMATS)
    assert HEADLINE_METRICS[0] == "mae" and set(HEADLINE_METRICS) == {"mae", "rmsle", "hit_rate", "mse", "r2"}
    with pytest.raises(ValueError):
        Metric("x", "X", "no such format", True, "furlongs")
    assert METRIC_BY_KEY["mae"].show(1234.5) == "$1,234.50" and METRIC_BY_KEY["cost_usd"].show(0.0123) == "$0.0123"
    assert METRIC_BY_KEY["hit_rate"].show(None) == "—" and METRIC_BY_KEY["mse"].show(22871.6) == "22,872"
    assert [METRIC_BY_KEY["mae"].show(v) for v in ("12", True, float("inf"), [1])] == ["—"] * 4   # a damaged file


def test_metrics_json_and_the_displayed_fields_hold_every_metric_of_the_table(data_dir):
    lines = (data_dir / "amazon8" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    records = []
    for n, line in enumerate(lines):
        truth = json.loads(line)["price"]
        guess = truth * (1 + n / 10)
        records.append({"id": str(n), "truth": truth, "guess": guess, "error": abs(guess - truth), "sle": 0.1,
                        "colour": "green", "parsed": n % 7 != 0, "failure": None})
    computed = run_metrics(records_frame(records))
    from_metrics = {m.key for m in METRICS if m.source == "metrics"} | CI_KEYS
    assert from_metrics <= set(computed), from_metrics - set(computed)
    row = entry_from_result(published_result("amazon8", "reference:x", {"mae": 1.0, "kind": "baseline"}), "amazon8")
    assert set(METRIC_BY_KEY) <= set(displayed_fields(row))


def test_report_columns_cards_and_comparisons_come_from_the_table(report):
    out, _ = report
    index = (out / "index.html").read_text(encoding="utf-8")
    seen = set()
    for table in re.findall(r'<table class="board.*?</table>', index, re.S):
        for attrs, text in _cells(table, "th", "num"):
            if "data-ci" in attrs:
                assert METRIC_BY_KEY[attrs["data-ci"]].ci and text == "95% CI"
            else:
                seen.add(_check_header(attrs, text))
    assert {"mae", "mse", "r2", "rmsle", "hit_rate", "parse_rate", "cost_usd", "items_per_s"} <= seen
    assert f'title="rank by MAE ({METRIC_BY_KEY["mae"].better})"' in index
    compare = (out / "compare.html").read_text(encoding="utf-8")
    headers = [a for a, _ in _cells(compare, "th", "num")]
    assert headers and all("data-metric" in a or "data-ci" in a for a in headers)
    for attrs, text in _cells(compare, "th", "num"):
        if "data-metric" in attrs:
            _check_header(attrs, text)
    for page in (out / "runs").glob("*.html"):
        cards = _cells(page.read_text(encoding="utf-8"), "div", "card")
        assert cards
        for attrs, body in cards:       # body ends at the card's first inner </div>: its heading
            _check_header(attrs, re.sub(r'^<div class="k">', "", body))


def test_leaderboard_csv_metric_columns_are_the_tables(report):
    out, _ = report
    table = pd.read_csv(out / "leaderboard.csv")
    unknown = [c for c in table.columns if c not in IDENTITY_COLUMNS | set(METRIC_BY_KEY) | CI_KEYS]
    assert unknown == [], f"leaderboard.csv shows metrics not in scoring.METRICS: {unknown}"
    # kept stable: the same columns, in the same order, as before the schema drove them
    assert list(table.columns) == ["task", "rank", "label", "model", "kind", "provenance", "quant", "prompt",
                                   "run_id", "mixed", "n", "mae", "mae_ci_low", "mae_ci_high", "rmsle", "hit_rate",
                                   "parse_rate", "cost_usd", "verified_pct", "mse", "r2",
                                   "same_as_above"]


@pytest.mark.parametrize("task", ["amazon8", "amazon25"])
def test_cli_summary_names_and_writes_each_metric_as_the_table_does(report, data_dir, capsys, task):
    _, tmp = report
    argv = ["--data-dir", str(data_dir), "--store", str(tmp / "runs"), "run", "--task", task, "--model",
            "reference:human", "--json"]
    assert cli.main(argv) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert cli.main(argv[:-1]) == 0
    summary = capsys.readouterr().out.splitlines()[0]
    labels = sorted((m.label for m in METRICS), key=len, reverse=True)
    shown = []
    for segment in summary.split(": ", 1)[1].split("  "):
        if segment.startswith(("95% CI", "normal 95% CI")):
            continue
        label = next((lab for lab in labels if segment.startswith(lab + " ")), None)
        assert label, f"the summary shows {segment!r}, a metric not in scoring.METRICS"
        metric = next(m for m in METRICS if m.label == label)
        assert segment[len(label) + 1:].split(" (")[0] == metric.show(metrics[metric.key])
        shown.append(metric.key)
    assert shown[0] == "mae" and "parse_failure_rate" in shown
    assert ("rmsle" in shown) == (task == "amazon8") and ("r2" in shown) == (task == "amazon25")


def test_lm_eval_metric_list_agrees_with_the_table_on_names_and_direction(data_dir, tmp_path):
    import yaml

    from harness.exports.lm_eval import export_lm_eval
    from harness.tasks import load_task

    path = export_lm_eval(load_task("amazon8", data_dir=data_dir, eval_slice="0:3"), tmp_path)
    spec = yaml.load(path.read_text(encoding="utf-8").replace("!function ", ""), Loader=yaml.SafeLoader)
    listed = {entry["metric"]: entry["higher_is_better"] for entry in spec["metric_list"]}
    assert listed and set(listed) <= set(METRIC_BY_KEY)
    assert all(higher == (not METRIC_BY_KEY[key].lower_is_better) for key, higher in listed.items())
    module_spec = importlib.util.spec_from_file_location("exported_utils", tmp_path / "utils.py")
    utils = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(utils)
    assert set(utils.process_results({"price": 10.0}, ["$12"])) == set(listed)   # what it returns is listed


def test_task_yaml_metrics_are_the_tables_headline_metrics(data_dir):
    from harness import task_schema
    from harness.tasks import load_task

    assert set(task_schema.METRICS) == set(HEADLINE_METRICS)
    assert set(task_schema.DEFAULT_METRICS) < set(HEADLINE_METRICS)
    assert set(load_task("amazon25", data_dir=data_dir).metrics) <= set(HEADLINE_METRICS)


def test_the_docs_list_exactly_the_tables_metrics():
    rows = markdown_table(DOCS / "leaderboards.md", "**One metric schema.**")
    assert [(key.strip("`"), label, lower) for key, label, lower, _ in rows] == \
        [(m.key, m.label, "yes" if m.lower_is_better else "no") for m in METRICS]
