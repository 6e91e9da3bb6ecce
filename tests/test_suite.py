"""Leaderboard specs, the job matrix, and the suite: caching, resuming, failures, the CLI."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import cli
from harness.errors import InputError
from harness.suite import job_status, load_leaderboard, run_suite, select
from tests._suite_support import FAIL_AFTER_ENV, register, small_task, write_leaderboard

REPO = Path(__file__).resolve().parent.parent
COURSE = REPO / "leaderboards" / "course.yaml"


@pytest.fixture(autouse=True)
def _testonly_backend():
    register()


def test_course_matrix_has_every_recorded_run_and_our_baselines():
    board = load_leaderboard(COURSE)
    refs = [j for j in board.jobs if j.reference]
    assert len([j for j in refs if j.task == "amazon8"]) == 16
    assert [j.model for j in refs if j.task == "appliances"] == ["reference:llama-3.1-8b-qlora-appliances"]
    assert {"baseline:random", "baseline:word2vec-svr", "baseline:bow-linreg"} <= {j.model for j in board.jobs}
    assert any(j.model.startswith("hf:") for j in board.jobs)


def test_quantization_matrix_expands_models_x_quant_x_prompt():
    board = load_leaderboard(REPO / "leaderboards" / "quantization.yaml")
    smol = sorted((j.quant, j.prompt) for j in board.jobs if j.model == "hf:smollm2-135m-instruct")
    gemma = sorted((j.quant, j.prompt) for j in board.jobs if j.model == "hf:gemma-3-270m")
    assert smol == [("none", "base"), ("none", "chat")]
    assert gemma == [("4bit", "base"), ("8bit", "base"), ("none", "base")]


@pytest.mark.parametrize("body, line, field", [
    ("name: x\ntasks: [amazon8]\nmodels:\n  - model: hf:a\n    quant: [none, 3bit]\n", 5, "models.0.quant"),
    ("name: x\ntasks: [amazon8]\nmodels:\n  - model: nocolon\n", 4, "models.0.model"),
    ("name: x\ntasks: [amazon8, nosuchtask]\n", 2, "tasks.1"),
    ("name: x\ntasks: [amazon8]\nreferences:\n  appliances: [human]\n", 4, "references.appliances"),
    ("name: x\ntasks: [amazon8]\nmodels:\n  - model: hf:a\n    colour: blue\n", 5, "models.0.colour"),
    ("name: x\ntasks: [amazon8]\nmodels:\n  - model: hf:a\n    resources: {num_gpus: -1}\n", 5,
     "models.0.resources.num_gpus"),
    ("name: x\ntasks: [amazon8]\nmodels:\n  - model: hf:a\n    resources: {custom: [big_gpu]}\n", 5,
     "models.0.resources.custom"),
    ("name: x\ntasks: [amazon8]\nmodels:\n  - model: hf:a\n    resources: {custom: {GPU: 1}}\n", 5,
     "models.0.resources.custom.GPU"),
    ("name: x\ntasks: [amazon8]\nmodels:\n  - model: hf:a\n    resources: {custom: {big: .inf}}\n", 5,
     "models.0.resources.custom.big"),
])
def test_spec_errors_name_file_line_and_field(tmp_path, body, line, field):
    path = write_leaderboard(tmp_path / "bad.yaml", body)
    with pytest.raises(InputError) as err:
        load_leaderboard(path)
    assert (err.value.path, err.value.line, err.value.field) == (path, line, field)


def test_suite_on_course_references_builds_report_and_second_run_recomputes_nothing(data_dir, store, tmp_path):
    board = load_leaderboard(COURSE)
    only = ["reference:*"]
    first = run_suite(board, data_dir=data_dir, store=store, only=only, echo=lambda _: None)
    assert not first.failures and first.computed == 17 * 250 + 100     # + amazon25's human, 100 items
    t0 = time.perf_counter()
    second = run_suite(board, data_dir=data_dir, store=store, only=only, echo=lambda _: None)
    seconds = time.perf_counter() - t0
    print(f"second invocation of 18 reference jobs: {seconds:.2f} s, {second.computed} items predicted")
    assert second.computed == 0 and all(o["cached"] for _, o in second.outcomes)
    assert {o["run_id"] for _, o in first.outcomes} == {o["run_id"] for _, o in second.outcomes}
    statuses = {job_status(j, data_dir=data_dir, store=store).state for j in select(board.jobs, only)}
    assert statuses == {"cached"}

    from harness.report import report_for_leaderboard

    index = report_for_leaderboard(board, out_dir=tmp_path / "report", data_dir=data_dir, store=store)
    html = index.read_text(encoding="utf-8")
    assert "$126.55" in html and "Human (course author)" in html
    assert len(list((tmp_path / "report" / "runs").glob("*.html"))) == 18
    assert (tmp_path / "report" / "tasks" / "appliances.html").exists()
    import pandas as pd

    table = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    human = table[table["model"] == "reference:human"].iloc[0]
    assert round(human["mae"], 2) == 126.55 and human["rank"] == 12 and human["provenance"] == "recorded"


def test_cli_suite_keeps_going_lists_failures_and_resumes(data_dir, store, tmp_path, monkeypatch, capsys):
    task = small_task(tmp_path, data_dir, n=12)
    board = write_leaderboard(tmp_path / "board-mini.yaml", f"""
name: mini
tasks: [{task}]
models:
  - model: testonly:crashy
  - model: nosuchbackend:thing
  - model: testonly:steady
    prompt: [base, chat]
""")
    argv = ["--data-dir", str(data_dir), "--store", str(store), "suite", str(board), "--out", str(tmp_path / "out")]
    monkeypatch.setenv(FAIL_AFTER_ENV, "5")
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert "4 job(s) failed" in err
    assert "unknown backend 'nosuchbackend'" in err
    assert "test predictor crashed after 5 items" in err
    assert (tmp_path / "out" / "index.html").exists()       # the report is built anyway

    assert cli.main(argv[:-2] + ["--dry-run"]) == 0
    out, _ = capsys.readouterr()
    assert out.count("resumes at 5/12") == 3 and "unavailable" in out and "nothing was run" in out

    monkeypatch.delenv(FAIL_AFTER_ENV)
    assert cli.main(argv) == 1                              # only the unknown backend still fails
    out, err = capsys.readouterr()
    assert "1 job(s) failed" in err and "21 items predicted" in out   # 3 jobs x 7 missing items
    assert cli.main(argv) == 1
    out, _ = capsys.readouterr()
    assert "0 items predicted" in out


def test_published_rows_for_a_task_without_per_item_files(tmp_path, store):
    hub_only = tmp_path / "hubonly.yaml"
    text = (REPO / "tasks" / "amazon8.yaml").read_text(encoding="utf-8")
    start, end = text.index("  local:"), text.index("  hub:")
    hub_only.write_text(text[:start] + text[end:], encoding="utf-8")
    board = write_leaderboard(tmp_path / "pub.yaml", f"name: pub\ntasks: [{hub_only}]\n"
                              "references:\n  hubonly: [human, gpt-4o-mini]\n")
    from harness.report import report_for_leaderboard
    from harness.suite import load_leaderboard as load

    store.mkdir()                   # an empty store (one named but absent is an error: harness/runs/store.py)
    index = report_for_leaderboard(load(board), out_dir=tmp_path / "r", store=store)
    html = index.read_text(encoding="utf-8")
    assert "$126.55" in html and "$79.58" in html and html.count("b-published") >= 2
    assert not list((tmp_path / "r" / "runs").glob("*.html"))   # no per-item data, no run pages


def test_a_model_job_shows_its_progress_and_a_cached_or_quick_one_nothing(data_dir, store, tmp_path, capsys):
    """stderr is not a terminal here: a plain line every `progress_every` seconds with items done, items/s, ETA."""
    import re

    from harness.suite.executors import LocalExecutor
    from tests import _slow_predictor

    _slow_predictor.register()
    task = small_task(tmp_path, data_dir, n=24)
    board = load_leaderboard(write_leaderboard(tmp_path / "slow.yaml", f"""
name: slow
tasks: [{task}]
models:
  - testonly:quick
  - {{model: "slowtest:x", options: {{delay: 0.1}}}}
"""))
    executor = LocalExecutor(progress_every=0.5)
    assert not run_suite(board, executor=executor, data_dir=data_dir, store=store).failures
    out, err = capsys.readouterr()
    lines = re.findall(r"^\[2/2\] mini \| slowtest:x delay=0.1: (\d+)/24 items \(\d+%\), ([\d.]+) items/s, "
                       r"elapsed \d\d:\d\d, ETA (?:\d\d:\d\d|\?)$", err, re.M)
    done = [int(n) for n, _ in lines]
    assert len(done) >= 3 and done == sorted(done) and 0 < done[0] < 24 and done[-1] == 24, err
    assert all(0.5 < float(rate) < 10.5 for _, rate in lines), err        # 0.1 s per item: at most 10 items/s
    assert "[1/2]" not in err and len(err.splitlines()) == len(lines), err   # the quick job printed nothing
    assert "[2/2] mini | slowtest:x delay=0.1: 24 items predicted" in out
    assert not run_suite(board, executor=executor, data_dir=data_dir, store=store).failures
    out, err = capsys.readouterr()
    assert err == "" and out.count("cached") == 2           # cached jobs: no progress at all
