"""`pricebench export-eee`: real runs as Every Eval Ever files that the package's own validator passes.

The validator is every-eval-ever 0.3.0's CLI (`python -m every_eval_ever.validate`), installed in its
own virtualenv (.venv-eee, by .ci/setup.d/60-every-eval-ever.sh: the package declares Python >= 3.12,
its validator runs on 3.11 alone). Refusals: a missing run id, an unknown leaderboard, an OUT_DIR
that is a file, a link or holds a file pricebench did not write, a run that is not complete; each
is one line, and OUT_DIR is left as it was.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.exports.eee_records import model_id
from harness.runs.runner import run
from harness.scoring import METRIC_BY_KEY
from harness.tasks import load_task
from tests._hostile import assert_one_line_error, cli, snapshot

REPO = Path(__file__).resolve().parent.parent
VALIDATOR = REPO / ".venv-eee" / "bin" / "python"
MARKER = ".pricebench-eee.json"


def validate(out: Path) -> list[dict]:
    """Run the package's validator on every file of the export; assert it passes cleanly (exit 0)."""
    if not VALIDATOR.exists():
        pytest.skip(f"{VALIDATOR} is absent: run .ci/setup.d/60-every-eval-ever.sh (CI installs it)")
    done = subprocess.run([str(VALIDATOR), "-m", "every_eval_ever.validate", "--format", "json",
                           f"{out}/data/*/*/*/*.json*"], capture_output=True, text=True, timeout=600)
    reports = json.loads(done.stdout)
    bad = [r for r in reports if not r["valid"] or r["warnings"]]
    assert done.returncode == 0 and not bad, (done.returncode, bad[:2], done.stderr[-2000:])
    return reports


def aggregates(out: Path) -> dict[str, dict]:
    """{pricebench model name: aggregate log} of an export."""
    logs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted((out / "data").glob("*/*/*/*.json"))]
    return {log["model_info"]["additional_details"]["pricebench_model"] + "@" + log["evaluation_results"][0][
        "source_data"]["dataset_name"]: log for log in logs}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
    """A store with two recorded runs and a fitted baseline on amazon8 (the real items)."""
    store = tmp_path_factory.mktemp("eee") / "runs"
    made = {model: run("amazon8", model, data_dir=data_dir, store=store, progress=False)
            for model in ("reference:human", "reference:gpt-4o-2024-08-06", "baseline:constant-mean")}
    return store, made


def test_runs_export_as_records_the_validator_passes(runs, tmp_path, capsys, data_dir):
    store, made = runs
    out = tmp_path / "eee"
    code, stdout, err = cli(capsys, "--store", store, "export-eee", *(r.run_id[:8] for r in made.values()), out)
    assert code == 0, err
    assert stdout.count("(250 items)") == 3 and "validate with" in stdout
    reports = validate(out)
    assert sorted(r["file_type"] for r in reports) == ["aggregate"] * 3 + ["instance"] * 3
    logs = aggregates(out)
    human = made["reference:human"]
    log = logs["reference:human@amazon8"]
    results = {r["evaluation_result_id"]: r for r in log["evaluation_results"]}
    mae = results["mae"]["score_details"]
    assert mae["score"] == human.metrics["mae"] and mae["uncertainty"]["num_samples"] == 250
    ci = mae["uncertainty"]["confidence_interval"]
    assert (ci["lower"], ci["upper"], ci["confidence_level"]) == (human.metrics["mae_ci_low"],
                                                                  human.metrics["mae_ci_high"], 0.95)
    for key in ("mae", "rmsle", "hit_rate", "parse_failure_rate"):      # the one metric table's schema
        metric = METRIC_BY_KEY[key]
        config = results[key]["metric_config"]
        assert (config["metric_name"], config["lower_is_better"]) == (metric.label, metric.lower_is_better)
        assert results[key]["score_details"]["score"] == pytest.approx(human.metrics[key])
    assert log["source_metadata"]["additional_details"]["provenance"] == "recorded"
    assert log["source_metadata"]["additional_details"]["data_hash"] == human.manifest["identity"]["task"]["eval_hash"]
    assert log["eval_library"]["version"] == human.manifest["versions"]["pricebench"]
    baseline = logs["baseline:constant-mean@amazon8"]
    assert baseline["source_metadata"]["evaluator_relationship"] == "first_party"
    assert baseline["model_info"]["additional_details"]["provenance"] == "measured"
    # the per-item rows: the stored reply, guess, truth and error of every item, in the run's order
    samples = out / log["detailed_evaluation_results"]["file_path"]
    rows = [json.loads(line) for line in samples.read_text(encoding="utf-8").splitlines()]
    stored = human.df.set_index("id")
    texts = {item.id: item.text for item in load_task("amazon8", data_dir=data_dir).eval_items()}
    assert [r["sample_id"] for r in rows] == human.manifest["item_ids"]
    for row in rows[:20]:
        item = stored.loc[row["sample_id"]]
        assert row["evaluation"]["score"] == item["error"]
        assert row["evaluation"]["is_correct"] == (item["colour"] == "green")
        assert row["output"]["raw"] == [item["raw"]] and float(row["input"]["reference"][0]) == item["truth"]
        assert float(row["metadata"]["guess"]) == item["guess"] and row["input"]["raw"] == texts[row["sample_id"]]
    assert sorted(json.loads((out / MARKER).read_text())["files"]) == sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != MARKER)


def test_a_second_export_rewrites_only_its_own_files(runs, tmp_path, capsys):
    store, made = runs
    out = tmp_path / "eee"
    human = made["reference:human"].run_id
    assert cli(capsys, "export-eee", human, out, "--store", store)[0] == 0
    first = snapshot(out)
    assert cli(capsys, "export-eee", human, made["baseline:constant-mean"].run_id, out, "--store", store)[0] == 0
    second = snapshot(out)
    assert set(first) - {MARKER} < set(second)               # the same file names, plus the new run's
    validate(out)


def test_a_leaderboard_exports_its_complete_runs_and_published_rows_and_lists_the_rest(runs, tmp_path, capsys,
                                                                                       data_dir):
    store, made = runs
    board = tmp_path / "board.yaml"
    board.write_text("name: eee\ntasks: [amazon8, amazon25]\n"
                     "references: {amazon8: [human, ensemble], amazon25: [human]}\n"
                     "models:\n  - {model: 'baseline:constant-mean', tasks: [amazon8]}\n"
                     "  - {model: 'baseline:tfidf-ridge', tasks: [amazon8]}\n", encoding="utf-8")
    out = tmp_path / "eee"
    code, stdout, err = cli(capsys, "--store", store, "--data-dir", data_dir, "export-eee", board, out)
    assert code == 0, err
    assert "not exported: amazon8 | reference:ensemble: to-run" in stdout
    assert "not exported: amazon8 | baseline:tfidf-ridge: to-run" in stdout
    assert "not exported: amazon25 | reference:human: to-run" in stdout
    logs = aggregates(out)
    assert {"reference:human@amazon8", "baseline:constant-mean@amazon8"} <= set(logs)
    published = [log for log in logs.values() if log["source_metadata"]["source_type"] == "documentation"]
    assert published and all("detailed_evaluation_results" not in log for log in published)   # amazon25's figures
    assert all(log["source_metadata"]["additional_details"]["provenance"] == "published" for log in published)
    validate(out)


def test_a_partial_run_or_a_missing_one_is_refused_and_nothing_is_written(runs, tmp_path, capsys, data_dir):
    store, made = runs
    out = tmp_path / "eee"
    good = made["reference:human"].run_id
    code, _, err = cli(capsys, "export-eee", good, "0123abcd", out, "--store", store)
    assert_one_line_error(code, err, "no run matching '0123abcd'", exit_code=2)
    assert not out.exists()
    partial = tmp_path / "partial"
    record = run("amazon8", "reference:random", data_dir=data_dir, store=partial, progress=False)
    (record.path / "metrics.json").unlink()
    code, _, err = cli(capsys, "export-eee", record.run_id, out, "--store", partial)
    assert_one_line_error(code, err, record.run_id, "partial", "only complete runs")
    assert not out.exists()


def test_a_hand_edited_manifest_still_exports_valid_records(runs, tmp_path, capsys):
    """Manifest fields of the wrong type (a list for the identity, a number for the label, a model name
    that climbs out of folders) neither raise nor leak into a path."""
    store = tmp_path / "runs"
    shutil.copytree(runs[0], store)
    rid = runs[1]["reference:human"].run_id
    manifest = json.loads((store / rid / "manifest.json").read_text())
    manifest.update(identity=["x"], versions="nope", label=5, options=None, updated="yesterday", bootstrap=[],
                    model="hf:../../../../etc/passwd", quant={"a": 1})
    (store / rid / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "eee"
    code, stdout, err = cli(capsys, "export-eee", rid, out, "--store", store)
    assert code == 0, err
    assert [p.relative_to(out).parts[:4] for p in (out / "data").rglob("*.json")] == [
        ("data", "pricebench_amazon8", "pricebench", "hf-passwd")]
    validate(out)


@pytest.mark.parametrize("argv, words", [
    (["leaderboards/nope.yaml"], ["nope.yaml", "leaderboard file not found"]),
    (["../etc"], ["'../etc' is neither a run id"]),
    (["leaderboards/course.yaml", "a4ef"], ["one leaderboard .yaml, or run ids"]),
])
def test_bad_sources_are_one_line_errors(argv, words, runs, tmp_path, capsys):
    code, _, err = cli(capsys, "export-eee", *argv, tmp_path / "eee", "--store", runs[0])
    assert_one_line_error(code, err, *words, exit_code=2)
    assert not (tmp_path / "eee").exists()


@pytest.mark.parametrize("make", ["file", "link", "foreign"])
def test_an_out_dir_that_is_not_ours_is_never_written(make, runs, tmp_path, capsys):
    store, made = runs
    human = made["reference:human"].run_id
    out = tmp_path / "eee"
    if make == "file":
        out.write_text("mine")
    elif make == "link":
        (tmp_path / "elsewhere").mkdir()
        out.symlink_to(tmp_path / "elsewhere")
    else:
        (out / "data").mkdir(parents=True)
        (out / "data" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, "export-eee", human, out, "--store", store)
    assert_one_line_error(code, err, str(out), "OUT_DIR", exit_code=2)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("model, options, expected", [
    ("hf:HuggingFaceTB/SmolLM2-135M-Instruct", {}, "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ("hf:smollm2-135m-instruct", {}, "HuggingFaceTB/SmolLM2-135M-Instruct"),
    ("openai:gpt-4o-mini", {}, "openai/gpt-4o-mini"),
    ("openai:served", {"base_url": "http://127.0.0.1:8000/v1"}, "pricebench/openai-served"),
    ("reference:human", {}, "pricebench/reference-human"),
    ("hf:../../etc/passwd", {}, "pricebench/hf-passwd"),
    ("hf:/models/x:y<z>.gguf", {}, "pricebench/hf-x-y-z-.gguf"),
    ("hf:data/CON", {}, "pricebench/hf-x-CON"),
])
def test_model_ids_are_hub_style_and_safe_path_components(model, options, expected):
    assert model_id(model, options) == expected
    for part in expected.split("/"):
        assert part not in ("", ".", "..", "data") and os.sep not in part


@pytest.mark.slow
def test_course_leaderboard_reference_and_baseline_jobs_export_and_validate(tmp_path, capsys, data_dir,
                                                                             baseline_fit_cache, monkeypatch):
    """The issue's acceptance, minus the model jobs (minutes of CPU; listed as not exported): the course
    leaderboard's recorded runs, each of its baselines (on amazon8: the other tasks' baseline runs are
    the same records on other items; they stay to-run, listed as not exported), and its published rows
    pass the package's validator. The baselines come from the session's fitted cache (test_baselines)."""
    from harness.suite import load_leaderboard

    board = REPO / "leaderboards" / "course.yaml"
    store, out = tmp_path / "runs", tmp_path / "eee"
    code, _, err = cli(capsys, "--store", store, "--data-dir", data_dir, "suite", str(board),
                       "--only", "reference:*", "--no-report")
    assert code == 0, err
    jobs = load_leaderboard(board).jobs
    baselines = [j for j in jobs if j.model.startswith("baseline:")]
    with monkeypatch.context() as fitted_here:        # only the fits: the models stay in the user's cache
        fitted_here.setenv("PRICEBENCH_CACHE", str(baseline_fit_cache))
        for job in baselines:
            if job.task == "amazon8":
                run(job.task, job.model, data_dir=data_dir, store=store, progress=False)
    code, stdout, err = cli(capsys, "--store", store, "--data-dir", data_dir, "export-eee", board, out)
    assert code == 0, err
    not_exported = sorted(line for line in stdout.splitlines() if line.startswith("not exported: "))
    open_jobs = [j for j in jobs if j.model.startswith(("hf:", "finetune:"))]
    others = [j for j in baselines if j.task != "amazon8"]
    assert len(open_jobs) == 8 and len(others) == 18 and len(not_exported) == len(open_jobs) + len(others)
    assert all(": to-run" in line and any(f" {kind}:" in line for kind in ("hf", "finetune", "baseline"))
               for line in not_exported)
    reports = validate(out)
    runs = sum(1 for r in reports if r["file_type"] == "instance")
    assert runs == 18 + 9                        # 16 + 1 + 1 recorded runs, 9 baselines on amazon8
    assert sum(1 for r in reports if r["file_type"] == "aggregate") > runs      # and the 2025 published rows


def test_a_users_files_in_the_export_folder_survive_a_re_export(runs, tmp_path, capsys):
    store, made = runs
    human = made["reference:human"].run_id
    out = tmp_path / "eee"
    assert cli(capsys, "export-eee", human, out, "--store", store)[0] == 0
    folder = next((out / "data").glob("*/*/*"))
    (folder / "mine.json").write_text("{}")
    (folder / "link.json").symlink_to(tmp_path / "elsewhere.json")
    (out / "README.md").write_text("my notes")
    mine = {k: v for k, v in snapshot(out).items() if k.endswith(("mine.json", "link.json", "README.md"))}
    code, _, err = cli(capsys, "export-eee", human, out, "--store", store)
    assert code == 0, err
    assert {k: v for k, v in snapshot(out).items() if k in mine} == mine and len(mine) == 3
    assert not (tmp_path / "elsewhere.json").exists()


def test_a_users_file_where_the_export_writes_is_refused(runs, tmp_path, capsys):
    """An aggregate the user edited is theirs now: the re-export names it and changes nothing."""
    store, made = runs
    human = made["reference:human"].run_id
    out = tmp_path / "eee"
    assert cli(capsys, "export-eee", human, out, "--store", store)[0] == 0
    aggregate = next(p for p in (out / "data").rglob("*.json"))
    aggregate.write_text('{"edited": true}')
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, "export-eee", human, out, "--store", store)
    assert_one_line_error(code, err, str(aggregate), "OUT_DIR", "not written by pricebench", exit_code=2)
    assert snapshot(tmp_path) == before
