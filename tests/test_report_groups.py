"""Grouped metrics (per category, per truth price band): equal to a pandas groupby of the stored
predictions, paired per-group tests equal scoring's, the run page and groups.html show them escaped."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import harness
from harness.report import report_for_leaderboard
from harness.report.collect import entries_from_store
from harness.report.groups import group_board, grouped_metrics, paired_by_group
from harness.runs.merge import record_difference
from harness.scoring import bootstrap_ci, bootstrap_ci_many, paired_bootstrap
from harness.suite import load_leaderboard, run_suite
from tests._suite_support import EVIL, register, small_task, write_leaderboard

MODELS = ("reference:human", "reference:gpt-4o-mini")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """Two recorded runs of amazon8 in a store: {model: run folder}."""
    store = tmp_path_factory.mktemp("groups") / "runs"
    return store, {m: harness.run("amazon8", m, data_dir=data_dir, store=store, progress=False).path for m in MODELS}


def stored(folder: Path, data_dir: Path) -> pd.DataFrame:
    """predictions.jsonl read independently, each item's category from the task's items file."""
    records = [json.loads(line) for line in (folder / "predictions.jsonl").read_text("utf-8").splitlines()]
    items = [json.loads(line) for line in (data_dir / "amazon8" / "test.jsonl").read_text("utf-8").splitlines()]
    category = {i["id"]: i["category"] for i in items}
    df = pd.DataFrame.from_records(records)
    df["category"] = df["id"].map(category)
    df["band"] = pd.cut(df["truth"], [0, 25, 100, 250, 500, np.inf], right=False,
                        labels=["under $25", "$25–100", "$100–250", "$250–500", "$500 and over"])
    df["signed"] = df["guess"] - df["truth"]
    df["hit"] = df["colour"] == "green"
    return df


def expected(df: pd.DataFrame, by: str) -> pd.DataFrame:
    out = df.groupby(by, observed=True).agg(n=("error", "size"), mae=("error", "mean"), hit_rate=("hit", "mean"),
                                            bias=("signed", "mean"))
    out["hit_rate"] *= 100
    cis = {g: bootstrap_ci(part["error"].to_numpy()) for g, part in df.groupby(by, observed=True)}
    out["mae_ci_low"] = [cis[g][0] for g in out.index]
    out["mae_ci_high"] = [cis[g][1] for g in out.index]
    return out


@pytest.mark.parametrize("by", ["category", "band"])
def test_grouped_metrics_equal_a_pandas_groupby_of_the_stored_predictions(runs, data_dir, by):
    store, folders = runs
    entries, _ = entries_from_store(store)
    assert len(entries) == 2
    for entry, table in zip(entries, grouped_metrics(entries, by)):
        want = expected(stored(folders[entry.model], data_dir), by)
        got = table.rename(index=str).sort_index()
        want = want.rename(index=str).sort_index()[got.columns]
        assert list(got.index) == list(want.index) and got["n"].sum() == 250
        pd.testing.assert_frame_equal(got, want, check_dtype=False, check_names=False, rtol=1e-12)


def test_paired_test_per_group_equals_the_paired_bootstrap_of_that_group(runs, data_dir):
    store, folders = runs
    entries = {e.model: e for e in entries_from_store(store)[0]}
    a, b = (stored(folders[m], data_dir).set_index("id") for m in MODELS)
    tests = paired_by_group(entries[MODELS[0]], entries[MODELS[1]], "category")
    assert set(tests.index) == set(a["category"])
    for group, row in tests.iterrows():
        ids = a.index[a["category"] == group]
        want = paired_bootstrap(a.loc[ids, "error"], b.loc[ids, "error"])
        assert same_test(row.to_dict(), want), group
    board = group_board([entries[m] for m in MODELS], "category")
    for group, (best, second, test) in board.best.items():
        ids = a.index[a["category"] == group]
        errors = {m: df.loc[ids, "error"] for m, df in zip(MODELS, (a, b))}
        assert {best.model, second.model} == set(MODELS)
        assert errors[best.model].mean() <= errors[second.model].mean()
        assert same_test(test, paired_bootstrap(errors[best.model], errors[second.model])), group


def same_test(got: dict, want: dict) -> bool:
    """Two paired_bootstrap results agree: the verdict and n exactly, the figures to 1e-12."""
    numbers = ("mean_diff", "ci_low", "ci_high", "p_value")
    return (got["better"] == want["better"] and int(got["n"]) == want["n"]
            and [got[k] for k in numbers] == pytest.approx([want[k] for k in numbers], rel=1e-12))


def test_bootstrap_ci_many_gives_each_rows_bootstrap_ci():
    rows = np.random.default_rng(3).gamma(2, 50, (3, 120))
    many = bootstrap_ci_many(rows)
    assert len(many) == 3       # the same draws; a k-row matrix product may round the last bit differently
    for got, want in zip(many, (bootstrap_ci(r) for r in rows)):
        assert got == pytest.approx(want, rel=1e-12)


def test_categories_of_runs_stored_before_records_carried_them(runs, data_dir, tmp_path):
    """A leaderboard report takes them from its task; a store report shows them as unknown; a copy
    with and one without the field are the same run."""
    store, folders = runs
    old = tmp_path / "old"
    for folder in folders.values():
        copy = old / folder.name
        copy.mkdir(parents=True)
        for name in ("manifest.json", "metrics.json"):
            (copy / name).write_bytes((folder / name).read_bytes())
        records = [json.loads(line) for line in (folder / "predictions.jsonl").read_text("utf-8").splitlines()]
        assert record_difference(records[0], {k: v for k, v in records[0].items() if k != "category"}) is None
        assert record_difference(records[0], {**records[0], "category": "Other"}) == "category"
        (copy / "predictions.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "category"})
                                                        + "\n" for r in records), "utf-8")
    entries, _ = entries_from_store(old)
    assert set(grouped_metrics(entries, "category")[0].index) == {"(no category)"}
    board = load_leaderboard(write_leaderboard(tmp_path / "b.yaml", "name: old\ntasks: [amazon8]\nreferences:\n"
                                               "  amazon8: [human, gpt-4o-mini]\n"))
    index = report_for_leaderboard(board, out_dir=tmp_path / "report", data_dir=data_dir, store=old)
    page = (index.parent / "groups.html").read_text("utf-8")
    assert "Automotive" in page and "(no category)" not in page


def test_run_page_and_groups_page_show_the_tables(runs, data_dir, tmp_path):
    store, folders = runs
    board = load_leaderboard(write_leaderboard(tmp_path / "b.yaml", "name: two\ntasks: [amazon8]\nreferences:\n"
                                               "  amazon8: [human, gpt-4o-mini]\n"))
    index = report_for_leaderboard(board, out_dir=tmp_path / "report", data_dir=data_dir, store=store)
    assert 'href="groups.html"' in index.read_text("utf-8")
    human = stored(folders["reference:human"], data_dir)
    run_page = (index.parent / "runs" / f"{folders['reference:human'].name}.html").read_text("utf-8")
    for by in ("category", "band"):
        heading = "Category" if by == "category" else "Price band"
        found = re.search(rf'<table class="small groups" data-grouping="{heading}">(.*?)</table>', run_page, re.S)
        table = found.group(1)
        for group, row in expected(human, by).iterrows():
            assert re.search(rf"<bdi>{re.escape(str(group))}</bdi></td><td class=\"num\">{int(row.n):,}</td>"
                             rf"<td class=\"num\">\${row.mae:,.2f}</td>", table), group
    page = (index.parent / "groups.html").read_text("utf-8")
    assert page.count('<section class="group-board"') == 2
    by_category = expected(human, "category")
    for group in by_category.index:
        assert f"<bdi>{group}</bdi>" in page
    assert page.count("★</td>") == len(by_category) + 5 - (human["band"].value_counts() == 0).sum()


def test_hostile_category_is_escaped(data_dir, tmp_path):
    register()
    task = small_task(tmp_path, data_dir, n=12, name="evilcat")
    lines = (tmp_path / "data-evilcat" / "test.jsonl").read_text("utf-8").splitlines()
    items = [json.loads(line) for line in lines]
    for item in items[:5]:
        item["category"] = EVIL
    (tmp_path / "data-evilcat" / "test.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items), "utf-8")
    board = load_leaderboard(write_leaderboard(tmp_path / "board.yaml", f"""
name: evilcat
tasks: [{task}]
models:
  - model: testonly:noisy
    quant: none
    prompt: [base, chat]
"""))
    store = tmp_path / "runs"
    assert not run_suite(board, data_dir=data_dir, store=store, echo=lambda _: None).failures
    index = report_for_leaderboard(board, out_dir=tmp_path / "report", data_dir=data_dir, store=store)
    pages = [index.parent / "groups.html", *sorted((index.parent / "runs").glob("*.html"))]
    assert len(pages) == 3
    for page in pages:
        html = page.read_text("utf-8")
        assert "<script>alert" not in html and "<img src=x" not in html, page
        assert "<bdi>&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;</bdi>" in html, page
