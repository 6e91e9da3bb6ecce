"""The static report: escaping, self-containment, significance markers, comparisons, --store mode."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from harness import cli
from harness.report import report_for_leaderboard
from harness.scoring import paired_bootstrap_many
from harness.scoring import paired_bootstrap
from harness.suite import load_leaderboard, run_suite
from tests._suite_support import EVIL, register, small_task, write_leaderboard

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _testonly_backend():
    register()


def test_shared_draws_give_exactly_the_paired_bootstrap_of_scoring():
    rng = np.random.default_rng(7)
    for n in (250, 2000):
        pairs = [(rng.gamma(2, 50, n), rng.gamma(2, 53, n)) for _ in range(4)]
        for one, many in zip((paired_bootstrap(a, b) for a, b in pairs), paired_bootstrap_many(pairs)):
            assert one["better"] == many["better"] and one["p_value"] == many["p_value"]
            assert one["ci_low"] == pytest.approx(many["ci_low"], rel=1e-9)
            assert one["ci_high"] == pytest.approx(many["ci_high"], rel=1e-9)


@pytest.fixture(scope="module")
def mini_report(tmp_path_factory, data_dir):
    """A run of real items with a hostile product title (and replies that echo it), reported."""
    tmp = tmp_path_factory.mktemp("evil")
    register()
    task = small_task(tmp, data_dir, n=16, evil_title=True, name="evil")
    board = load_leaderboard(write_leaderboard(tmp / "board.yaml", f"""
name: evil
title: "Escaping <b>check</b>"
tasks: [{task}]
models:
  - model: testonly:noisy
    quant: none
    prompt: [base, chat]
    options: {{suffix: "{EVIL}"}}
"""))
    store = tmp / "runs"
    result = run_suite(board, data_dir=data_dir, store=store, echo=lambda _: None)
    assert not result.failures
    index = report_for_leaderboard(board, out_dir=tmp / "report", data_dir=data_dir, store=store)
    return index.parent


def test_product_text_and_replies_are_escaped(mini_report):
    pages = [mini_report / "index.html", mini_report / "compare.html", *sorted((mini_report / "runs").glob("*.html"))]
    assert len(pages) == 4
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "<script>alert" not in html and "<img src=x" not in html, page
        assert "<b>check</b>" not in html
    run_html = pages[-1].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in run_html
    assert run_html.count("<script") == 1               # only the report's own script tag


def test_report_is_self_contained(mini_report):
    for path in mini_report.rglob("*"):
        if path.suffix in (".html", ".css", ".js"):
            text = path.read_text(encoding="utf-8")
            assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), path
            assert "@import" not in text and "url(" not in text, path


def test_base_vs_chat_comparison_is_tested_on_the_same_items(mini_report):
    html = (mini_report / "compare.html").read_text(encoding="utf-8")
    assert "testonly:noisy, quantization none" in html
    assert re.search(r"p = [01]\.\d{3}|p < 0\.001", html)


def test_not_significant_marker_follows_the_paired_bootstrap(data_dir, tmp_path):
    board = load_leaderboard(write_leaderboard(tmp_path / "b.yaml", """
name: three
tasks: [amazon8]
references:
  amazon8: [gpt-4o-mini, gpt-4o-2024-08-06, random]
"""))
    store = tmp_path / "runs"
    outcomes = {j.model: o for j, o in run_suite(board, data_dir=data_dir, store=store, echo=lambda _: None).outcomes}
    html = report_for_leaderboard(board, out_dir=tmp_path / "r", data_dir=data_dir, store=store).read_text("utf-8")
    from harness.runs.results import load_run

    runs = {m: load_run(store / o["run_id"]).df.set_index("id")["error"] for m, o in outcomes.items()}
    # Ranked: gpt-4o (75.92), gpt-4o-mini (79.58), random (340.74).
    mini_vs_4o = paired_bootstrap(runs["reference:gpt-4o-mini"], runs["reference:gpt-4o-2024-08-06"].loc[
        runs["reference:gpt-4o-mini"].index])
    random_vs_mini = paired_bootstrap(runs["reference:random"], runs["reference:gpt-4o-mini"].loc[
        runs["reference:random"].index])
    rows = re.findall(r'<td data-sort="(\d)" class="rank">\d( <span class="tie")?', html)
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert bool(rows[1][1]) == (mini_vs_4o["better"] is None)
    assert bool(rows[2][1]) == (random_vs_mini["better"] is None)


def test_report_of_a_whole_store_from_the_cli(data_dir, tmp_path, capsys):
    store = tmp_path / "runs"
    for model in ("reference:human", "reference:gpt-4o-mini"):
        assert cli.main(["--data-dir", str(data_dir), "--store", str(store), "run", "--task", "amazon8",
                         "--model", model]) == 0
    assert cli.main(["--store", str(store), "report", "--out", str(tmp_path / "all")]) == 0
    assert "report:" in capsys.readouterr().out
    html = (tmp_path / "all" / "index.html").read_text(encoding="utf-8")
    assert "All runs in the store (2)" in html and "$126.55" in html and "$79.58" in html
    assert len(list((tmp_path / "all" / "runs").glob("*.html"))) == 2


def test_a_failed_build_leaves_the_previous_report_untouched(data_dir, tmp_path, monkeypatch):
    from tests._hostile import snapshot

    out = tmp_path / "r"
    board = load_leaderboard(write_leaderboard(tmp_path / "b.yaml", "name: one\ntasks: [amazon8]\n"
                                               "references:\n  amazon8: [human]\n"))
    run_suite(board, data_dir=data_dir, store=tmp_path / "runs", echo=lambda _: None)
    report_for_leaderboard(board, out_dir=out, data_dir=data_dir, store=tmp_path / "runs")
    before = snapshot(out)
    assert "index.html" in before and ".pricebench-report" in before
    import harness.report.build as build

    def broken(*args, **kwargs):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(build, "_run_page", broken)
    with pytest.raises(RuntimeError):
        report_for_leaderboard(board, out_dir=out, data_dir=data_dir, store=tmp_path / "runs")
    assert snapshot(out) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
