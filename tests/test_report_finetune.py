"""The report's fine-tuning views: a fine-tuned run's training curve and recipe on its run page
(from the training record its manifest carries: the report needs the run store alone), and the
base-model selection page (zero-shot, few-shot, fine-tuned of one base, each tested against the
base's zero-shot run). Hostile training records are escaped or skipped, never a crash."""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

import harness
from harness.finetune.record import CURVE_POINTS, compact_curve, curve_rows, repo_path
from harness.report import report_for_store
from harness.report.collect import entries_from_store
from harness.report.selection import base_selection
from harness.report.training import MAX_ROWS, read_training
from harness.runs.record import RunManifest
from harness.scoring import paired_bootstrap
from harness.runs.store import RunStore, read_json, write_json_atomic
from tests._hostile import cli

_manifest = RunManifest.model_validate

REPO = Path(__file__).resolve().parent.parent
RECORDED = ("human", "llama-3.1-8b-base-4bit", "llama-3.1-8b-qlora", "gpt-4o-mini", "constant-mean")


def _polylines(svg: str) -> list[int]:
    """How many points each polyline of an SVG draws."""
    return [len(points.split()) for points in re.findall(r'<polyline [^>]*points="([^"]*)"', svg)]


# --- the record ------------------------------------------------------------------------------------
def test_the_curve_is_capped_evenly_keeping_every_evaluation():
    rows = [{"step": s, "loss": 3.0 / s, "learning_rate": 1e-4} for s in range(1, 3001)]
    for s in range(100, 3001, 100):
        rows[s - 1].update(eval_loss=1.0 + 1.0 / s, eval_mae=90.0 + s / 100)
    rows[5]["loss"] = float("nan")
    kept = compact_curve(rows)
    assert len(kept) == CURVE_POINTS
    assert [r["step"] for r in kept if "eval_mae" in r] == list(range(100, 3001, 100))
    assert kept[0]["step"] == 1 and kept[-1]["step"] == 3000 and all("learning_rate" not in r for r in kept)
    train = [r["step"] for r in kept if "eval_loss" not in r]
    gaps = {b - a for a, b in zip(train, train[1:])}
    assert max(gaps) - min(gaps) <= 7                       # evenly spaced, evaluations apart
    assert all(r["loss"] == r["loss"] for r in kept)        # no NaN


def test_a_regression_summary_becomes_the_same_curve_rows():
    summary = {"train_loss": [{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.5}],
               "validation_mae": [{"step": 2, "mae": 81.5}]}
    assert curve_rows(summary) == [{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.5, "eval_mae": 81.5}]


def test_the_recipe_link_only_for_a_recipe_in_the_repository(tmp_path):
    inside = REPO / "finetunes" / "smollm2-135m-lora-cpu.yaml"
    assert repo_path(inside) == "finetunes/smollm2-135m-lora-cpu.yaml"
    outside = tmp_path / "mine.yaml"
    outside.write_text("name: mine\n")
    assert repo_path(outside) is None and repo_path(REPO / "finetunes" / ".." / "pyproject.toml") is None
    record = {"recipe_file": "finetunes/smollm2-135m-lora-cpu.yaml"}
    training = read_training(_manifest({"info": {"training": record}}))
    report_runs = tmp_path / "reports" / "x" / "runs"
    href = training.recipe_href(report_runs)
    assert (report_runs / href).resolve() == inside.resolve()


def test_the_chart_draws_each_series_and_marks_the_checkpoint():
    curve = [{"step": s, "loss": 2.0 / s} for s in range(1, 41)]
    for row in curve[9::10]:
        row.update(eval_loss=1.5, eval_mae=120.0 - row["step"])
    training = read_training(_manifest({"info": {"training": {"curve": curve, "checkpoint": 20}}}))
    loss, mae = (str(svg) for svg in training.charts())
    assert _polylines(loss) == [40, 4] and _polylines(mae) == [4]
    assert loss.count('class="curve-dot"') == 4 and "checkpoint 20" in loss and "checkpoint 20" in mae
    assert "$100" in mae                                    # MAE in dollars on its axis
    assert read_training(_manifest({"info": {"training": {"curve": []}}})).charts() == []
    assert read_training(_manifest({"info": {}})) is None
    assert read_training(_manifest({"info": {"training": "x"}})) is None


# --- hostile records -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded_store(tmp_path_factory, data_dir) -> Path:
    """Real recorded runs on amazon8 (the course's per-item predictions): fast, real data."""
    store = tmp_path_factory.mktemp("report-finetune") / "runs"
    for name in RECORDED:
        harness.run("amazon8", f"reference:{name}", data_dir=data_dir, store=store, progress=False)
    return store


def _manifest_path(store: Path, name: str) -> Path:
    return next(p / "manifest.json" for p in store.iterdir()
                if f'"reference:{name}"' in (p / "manifest.json").read_text("utf-8"))


HOSTILE = {
    "recipe": "<script>alert(1)</script>", "base": "hf:<img src=x onerror=alert(2)>",
    "recipe_file": "finetunes/../../../etc/passwd.yaml", "adapter_id": {"a": 1}, "checkpoint": "3",
    "method": ["lora"], "train_s": "fast", "tokens_per_s": 10**400, "trainable_parameters": -5,
    "total_parameters": True, "train_items": 10**30, "steps": None,
    "settings": {"<b>key</b>": "<i>value</i>", "lr": 10**400, "nested": {"deep": [1, 2, {"x": "</code><script>"}]},
                 **{f"k{n}": n for n in range(500)}},
}


def test_hostile_training_records_are_escaped_or_skipped(recorded_store, tmp_path, capsys):
    store = tmp_path / "runs"
    shutil.copytree(recorded_store, store)
    curve = ([{"step": "1"}, {"step": -4, "loss": 1}, {"step": True, "loss": 1}, [1, 2], None, {"step": 3, "loss": "x"},
              {"step": 7, "eval_mae": 10**400}, {"step": 8, "eval_loss": -(10**400)}, {"step": 1e300, "loss": 2}]
             + [{"step": s, "loss": 1.0 + s % 7} for s in range(50_000)])
    cases = {"human": {**HOSTILE, "curve": curve}, "gpt-4o-mini": {"curve": "not a list", "settings": [1]},
             "constant-mean": ["not", "a", "record"]}
    for name, record in cases.items():
        path = _manifest_path(store, name)
        manifest = json.loads(path.read_text("utf-8"))
        manifest["info"] = {**manifest.get("info", {}), "training": record}
        path.write_text(json.dumps(manifest), encoding="utf-8")
    out = tmp_path / "out"
    code, _, err = cli(capsys, "--store", store, "report", "--out", out)
    assert code == 0 and "Traceback" not in err, err
    page = (out / "runs" / f"{_manifest_path(store, 'human').parent.name}.html").read_text("utf-8")
    section = page.split('<section class="training">')[1].split("</section>")[0]
    assert "<script>" not in section and "<img" not in section and "<b>key" not in section
    assert "&lt;script&gt;alert(1)" in section and "&lt;b&gt;key&lt;/b&gt;" in section
    assert "passwd" not in section and "Recipe file" not in section      # not a recipe of the repository
    assert section.count("<tr><th><bdi>") == 60                           # settings capped
    assert not re.search(r"NaN|Infinity|\binf\b", section)
    assert _polylines(section) == [MAX_ROWS - 9]                           # rows read capped; bad rows skipped
    assert "Tokens/s" not in section and "Training time" not in section and "Parameters" not in section  # not numbers: not shown
    assert "final adapter" in section                                      # "3" (text) is no checkpoint
    others = [(out / "runs" / f"{_manifest_path(store, n).parent.name}.html").read_text("utf-8")
              for n in ("gpt-4o-mini", "constant-mean")]
    assert "holds no curve" in others[0] and '<section class="training">' not in others[1]
    assert "reference:" not in (out / "selection.html").read_text("utf-8")   # recorded runs are no base's


def test_non_finite_figures_in_a_record_are_skipped():
    """The store refuses NaN and Infinity in a manifest; a record read by other means skips them too."""
    nan, inf = float("nan"), float("inf")
    training = read_training(_manifest({"info": {"training": {
        "train_s": nan, "tokens_per_s": inf, "checkpoint": inf, "trainable_parameters": nan, "steps": -inf,
        "curve": [{"step": 1, "loss": nan}, {"step": inf, "loss": 1.0}, {"step": 2, "loss": 1.5, "eval_mae": inf},
                  {"step": 3, "eval_loss": -inf}, {"step": 4, "loss": 0.5}],
        "settings": {"lr": nan, "wd": [inf]}}}}))
    assert training.curve == [{"step": 2, "loss": 1.5}, {"step": 4, "loss": 0.5}]
    assert training.train_s is None and training.checkpoint is None and training.trainable is None
    assert [v for _, v in training.facts] == ["final adapter"] and dict(training.settings) == {"lr": "?", "wd": "?"}
    assert _polylines(str(training.charts()[0])) == [2]


# --- the selection view ----------------------------------------------------------------------------
def _as(e, model, *, kind="open-base", quant="none", prompt="base", info=None, in_context=None):
    """A real recorded run's per-item predictions, labelled as a measured run of `model`."""
    manifest = e.manifest.model_copy(update={"model": model, "info": info or {}}, deep=True)
    if in_context:
        manifest.in_context = in_context
    return dataclasses.replace(e, model=model, kind=kind, provenance="measured", quant=quant, prompt=prompt,
                               manifest=manifest)


def test_the_selection_groups_each_base_and_tests_every_way_against_its_zero_shot(recorded_store):
    entries = {e.manifest.model.split(":", 1)[1]: e for e in entries_from_store(recorded_store)[0]}
    record = {"base": "hf:llama-3.1-8b", "recipe": "course-qlora", "checkpoint": 500, "train_s": 3600.5,
              "trainable_parameters": 42_000_000, "curve": [{"step": 1, "loss": 2.0}]}
    rows = [
        _as(entries["llama-3.1-8b-base-4bit"], "hf:llama-3.1-8b", quant="4bit", info={"parameters": 8_030_261_248}),
        _as(entries["human"], "hf:llama-3.1-8b", info={"parameters": 8_030_261_248}),
        _as(entries["gpt-4o-mini"], "hf:llama-3.1-8b", in_context={"shots": 5, "shot_selector": "nearest"}),
        _as(entries["llama-3.1-8b-qlora"], "finetune:course-qlora", kind="open-finetuned", quant="4bit",
            info={"training": record, "parameters": 8_072_261_248}),
        _as(entries["constant-mean"], "hf:other-model"),                           # alone: no choice to show
        entries["human"],                                                          # recorded: no base's
    ]
    groups = base_selection(rows)
    assert [g.base for g in groups] == ["hf:llama-3.1-8b"]
    g = groups[0]
    assert [(r.way, r.setting) for r in g.rows] == [
        ("zero-shot", "base prompt, 4bit"), ("zero-shot", "base prompt, none"),
        ("few-shot", "5-shot nearest (tfidf) (base prompt, none)"),
        ("fine-tuned", "course-qlora checkpoint 500 (base prompt, 4bit)")]
    assert g.reference is g.rows[1]                          # the full-precision zero-shot run
    assert g.reference.test is None and all(r.test for r in g.rows if r is not g.reference)
    for r in g.rows[2:] + g.rows[:1]:
        expected = paired_bootstrap(r.entry.errors, g.reference.entry.errors)
        assert r.test["mean_diff"] == pytest.approx(expected["mean_diff"]) and r.test["better"] == expected["better"]
    tuned = g.rows[3]
    assert tuned.train_s == 3600.5 and tuned.parameters == 8_072_261_248 and tuned.training.trainable == 42_000_000
    assert g.rows[2].parameters is None and g.rows[2].train_s is None


def test_the_selection_page_lists_the_rows_with_their_figures(recorded_store, tmp_path):
    store = tmp_path / "runs"
    shutil.copytree(recorded_store, store)
    for name, model, extra in (("llama-3.1-8b-base-4bit", "hf:llama-3.1-8b", {"parameters": 8_030_261_248}),
                               ("llama-3.1-8b-qlora", "finetune:course-qlora",
                                {"parameters": 8_072_261_248, "training": {"base": "hf:llama-3.1-8b", "train_s": 61.25,
                                                                           "recipe": "course-qlora"}})):
        path = _manifest_path(store, name)
        manifest = read_json(path)
        manifest["model"], manifest["info"] = model, extra          # now a measured run of that model
        write_json_atomic(path, manifest)
    assert all(f.inspect().state == "complete" for f in RunStore(store).folders())
    page = (report_for_store(store=store, out_dir=tmp_path / "out").parent / "selection.html").read_text("utf-8")
    section = page.split('data-base="hf:llama-3.1-8b"')[1]
    assert section.count("<tr data-way=") == 2 and 'data-way="fine-tuned"' in section
    assert "8,030,261,248" in section and "61.2 s" in section and "reference" in section
    assert re.search(r"[+−]\$[\d,.]+ \((better|worse|not significant), p", section)
    index = (tmp_path / "out" / "index.html").read_text("utf-8")
    assert 'href="selection.html"' in index


# --- for real: a tiny fine-tune through the CLI, evaluated, reported ---------------------------------
TINY = """\
name: tiny-report
base: hf:smollm2-135m-instruct
task: amazon8
data: {train: 24, validation: 4, validation_mae_items: 2}
training: {learning_rate: 2.0e-3, schedule: constant, batch_size: 4, max_steps: 6, eval_every: 3, save_every: 3,
           device: cpu, threads: 1}
"""


def _as_if_still_training(path: Path) -> None:
    """The adapter manifest as `pricebench finetune` writes it while training: running, no summary."""
    manifest = read_json(path)
    del manifest["training"]
    write_json_atomic(path, {**manifest, "status": "running"})


@pytest.mark.slow
def test_a_real_fine_tune_shows_its_curve_and_sits_beside_its_base(data_dir, tmp_path, capsys):
    """SmolLM2-135M: a 6-step LoRA (`pricebench finetune`), its final adapter and checkpoint 3, the
    base zero-shot and 2-shot, 4 items each (`pricebench run`): the run store alone makes the views."""
    pytest.importorskip("trl")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)            # a shared 2-core box: one thread avoids OpenMP's spinning
    try:
        recipe, adapters, store = tmp_path / "tiny-report.yaml", tmp_path / "adapters", tmp_path / "runs"
        recipe.write_text(TINY, encoding="utf-8")
        common = ("--data-dir", data_dir, "--store", store)
        code, _, err = cli(capsys, *common, "finetune", recipe, "--adapters", adapters)
        assert code == 0, err
        tuned = ("--model", f"finetune:{recipe}", "-o", f"adapters={adapters}")
        for extra in (tuned, (*tuned, "-o", "checkpoint=3"), ("--model", "hf:smollm2-135m-instruct", "--prompt", "base"),
                      ("--model", "hf:smollm2-135m-instruct", "--prompt", "base", "--shots", "2")):
            if "checkpoint=3" in extra:         # evaluated while the training goes on: no summary yet
                _as_if_still_training(next(adapters.glob("*/manifest.json")))
            code, _, err = cli(capsys, *common, "run", "--task", "amazon8", "--slice", "0:4", *extra)
            assert code == 0, err
    finally:
        torch.set_num_threads(threads)
    shutil.rmtree(adapters)                                  # the report needs the run store alone
    trained = {f.run_id: f.inspect().manifest for f in RunStore(store).folders()}
    records = {rid: m["info"]["training"] for rid, m in trained.items() if "training" in m["info"]}
    assert len(records) == 2 and all(m["info"]["parameters"] > 100_000_000 for m in trained.values())
    out = tmp_path / "out"
    code, _, err = cli(capsys, "--store", store, "report", "--out", out)
    assert code == 0, err
    final, early = sorted(records.values(), key=lambda r: "checkpoint" in r)
    assert [r["step"] for r in final["curve"] if "eval_loss" in r] == [3, 6] and len(final["curve"]) == 6
    assert early["checkpoint"] == 3 and early["curve"] == final["curve"][:3]     # from checkpoint-3's trainer state
    assert "train_s" in final and "train_s" not in early
    for rid, record in records.items():
        page = (out / "runs" / f"{rid}.html").read_text("utf-8")
        section = page.split('<section class="training">')[1].split("</section>")[0]
        # train loss, validation loss, validation MAE
        assert _polylines(section) == ([6, 2, 2] if record is final else [3, 1, 1])
        assert "tiny-report" in section and "Recipe file" not in section      # a recipe outside the repository
        assert ("checkpoint 3" in section) == (record is early)
    groups = base_selection([e for e in entries_from_store(store)[0]])
    assert [g.base for g in groups] == ["hf:smollm2-135m-instruct"]
    rows = groups[0].rows
    assert [r.way for r in rows] == ["zero-shot", "few-shot", "fine-tuned", "fine-tuned"]
    assert groups[0].reference is rows[0] and all(r.test is not None for r in rows[1:])
    assert [r.train_s for r in rows[2:]] == [final["train_s"], None] and final["train_s"] > 0
    page = (out / "selection.html").read_text("utf-8")
    base_parameters = trained[rows[0].entry.run_id]["info"]["parameters"]
    assert 130e6 < base_parameters < 140e6 and rows[2].parameters > base_parameters     # SmolLM2-135M; + LoRA
    assert page.count("<tr data-way=") == 4 and f"{base_parameters:,}" in page
